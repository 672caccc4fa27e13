/**
 * What the benchmarks share: server targets in child processes that report their cache counters
 * and CPU time when probed, the load generator (wrk when on PATH, else autocannon in its own
 * process), medians and tables. Used by `hit.ts` and `adapters.ts`.
 */
import { execFileSync, fork, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http, { type Server } from 'node:http';
import inspector from 'node:inspector';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CacheStats } from '../src/index.js';

const SELF = fileURLToPath(import.meta.url);

/** One measured run. Latencies in ms. */
export interface Measurement {
  rps: number;
  p50: number;
  p99: number;
  requests: number;
  /** Bytes received per response (headers and body). */
  bytesPerResponse: number;
  /** Socket errors, timeouts and non-2xx responses. */
  errors: number;
  /**
   * Server CPU time (user + system, µs) per completed request over the measured run. Less
   * sensitive to other processes on the machine than req/s: it is what one request costs.
   * Filled in by the orchestrator from the server probes (0 until then).
   */
  cpuPerRequest: number;
}

/** What a server reports when probed: its cache counters (null without a cache) and CPU time used. */
export interface Probe {
  stats: CacheStats | null;
  /** process.cpuUsage() of the server: user and system CPU time in microseconds. */
  cpu: NodeJS.CpuUsage;
}
type ServerMessage = { type: 'ready'; port: number } | ({ type: 'probe' } & Probe);
type LoadMessage = { type: 'result'; result: Measurement } | { type: 'error'; message: string };

/** How load is generated. */
export interface LoadConfig {
  connections: number;
  threads: number;
  tool: 'wrk' | 'autocannon';
  /**
   * How many distinct URLs the load cycles through: `/p/0` to `/p/<paths - 1>` on the target's
   * origin, round-robin per connection. Undefined (the default): every request is for the URL
   * given to `run()`.
   */
  paths?: number;
}

/** The paths a load cycles through when `LoadConfig.paths` is set. */
export function pathList(paths: number): string[] {
  return Array.from({ length: paths }, (_, i) => `/p/${i}`);
}

/**
 * CPU pinning (`BENCH_PIN`, default on where `taskset` exists and there are at least 2 CPUs):
 * every server process (all its threads) on the last CPU, the load generator on the others. On a
 * small VM the scheduler otherwise sometimes puts a server and the load generator on one core for
 * a whole run, and the same code then measures 18 or 30 µs per request depending on the process.
 */
export function pinning(): { server: string; load: string } | undefined {
  const raw = process.env.BENCH_PIN;
  if (raw === '0') return undefined;
  const cpus = os.availableParallelism();
  let taskset = false;
  try {
    execFileSync('taskset', ['--version'], { stdio: 'ignore' });
    taskset = true;
  } catch {
    taskset = false;
  }
  if (!taskset || cpus < 2) {
    if (raw === '1') throw new Error('BENCH_PIN=1 needs taskset and at least 2 CPUs');
    return undefined;
  }
  return { server: String(cpus - 1), load: cpus === 2 ? '0' : `0-${cpus - 2}` };
}

const PIN = pinning();

/** Pins a running process and all its threads to `cpus` (a taskset list). */
function pin(pid: number | undefined, cpus: string): void {
  if (pid !== undefined) execFileSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' });
}

/** A comma-separated environment variable whose items are all among `known`; not empty. */
export function listEnv<T extends string>(name: string, fallback: string, known: readonly string[], what = 'target'): T[] {
  const items = (process.env[name] ?? fallback)
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t !== '');
  for (const t of items) if (!known.includes(t)) throw new TypeError(`${name}: unknown ${what} ${JSON.stringify(t)} (use ${known.join(',')})`);
  if (items.length === 0) throw new TypeError(`${name} is empty`);
  return items as T[];
}

/** An integer environment variable, at least `min`. */
export function intEnv(name: string, fallback: number, min: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new RangeError(`${name} must be an integer >= ${min}, got ${JSON.stringify(raw)}`);
  return n;
}

function hasWrk(): boolean {
  try {
    execFileSync('wrk', ['--version'], { stdio: 'ignore' });
    return true;
  } catch (error) {
    // wrk --version exits 1 after printing its banner; only a missing binary is ENOENT.
    return (error as NodeJS.ErrnoException).code !== 'ENOENT';
  }
}

/** The load generator named by BENCH_TOOL, else wrk when it is on PATH, else autocannon. */
export function chooseTool(): LoadConfig['tool'] {
  const toolEnv = process.env.BENCH_TOOL;
  if (toolEnv !== undefined && toolEnv !== '' && toolEnv !== 'wrk' && toolEnv !== 'autocannon') {
    throw new TypeError(`BENCH_TOOL must be 'wrk' or 'autocannon', got ${JSON.stringify(toolEnv)}`);
  }
  if (toolEnv === 'autocannon') return 'autocannon';
  if (hasWrk()) return 'wrk';
  if (toolEnv === 'wrk') throw new Error('BENCH_TOOL=wrk but wrk is not on PATH');
  return 'autocannon';
}

/** The machine, the load and the load generator, as the first lines of a report. */
export async function describeSetup(title: string, config: LoadConfig): Promise<string[]> {
  let toolVersion = 'autocannon';
  if (config.tool === 'wrk') {
    try {
      execFileSync('wrk', ['--version'], { encoding: 'utf8' });
    } catch (error) {
      toolVersion = String((error as { stdout?: string }).stdout ?? 'wrk')
        .split('\n')[0]!
        .replace(/\s*Copyright.*$/, '')
        .trim();
    }
  } else {
    const { createRequire } = await import('node:module');
    toolVersion = `autocannon ${(createRequire(import.meta.url)('autocannon/package.json') as { version: string }).version}`;
  }
  const cpus = os.cpus();
  return [
    title,
    `node ${process.version}, ${os.platform()} ${os.arch()}, ${cpus.length} x ${cpus[0]?.model ?? 'unknown CPU'}`,
    `load avg at start: ${loadAverage()}`,
    PIN === undefined ? 'no CPU pinning (BENCH_PIN=0, or no taskset)' : `pinned: servers on CPU ${PIN.server}, load generator on CPU ${PIN.load} (BENCH_PIN=0 to turn off)`,
    `load generator: ${toolVersion}${config.tool === 'wrk' ? `, ${config.threads} thread(s)` : ' (own process)'}`,
  ];
}

/** The 1, 5 and 15 minute load averages. */
export function loadAverage(): string {
  return os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
}

// ---------------------------------------------------------------------------------------------
// Server side (in the target's child process)
// ---------------------------------------------------------------------------------------------

/**
 * `BENCH_PROFILE_DIR`: a CPU profile of the measured run only (no start-up, no warm-up, no other
 * target's run): the first probe (just before the run) starts V8's sampling profiler, the second
 * (just after it) stops it and writes `<dir>/<target args>-<pid>.cpuprofile`. Undefined when unset.
 */
function measuredRunProfiler(): ((then: () => void) => void) | undefined {
  const dir = process.env.BENCH_PROFILE_DIR;
  if (dir === undefined || dir === '') return undefined;
  const session = new inspector.Session();
  session.connect();
  let probes = 0;
  return (then) => {
    probes++;
    if (probes === 1) {
      session.post('Profiler.enable', () => session.post('Profiler.setSamplingInterval', { interval: 100 }, () => session.post('Profiler.start', then)));
    } else if (probes === 2) {
      session.post('Profiler.stop', (error, result) => {
        if (error === null) writeFileSync(path.join(dir, `${process.argv.slice(3).join('-')}-${process.pid}.cpuprofile`), JSON.stringify(result.profile));
        then();
      });
    } else then();
  };
}

/**
 * Listens on 127.0.0.1:0, tells the parent the port, and answers its probes with the cache's
 * counters and this process's CPU time.
 */
export function serveTarget(server: Server, stats: (() => CacheStats) | undefined): void {
  server.listen(0, '127.0.0.1', () => {
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('unexpected server address');
    process.send!({ type: 'ready', port: address.port } satisfies ServerMessage);
  });
  const profile = measuredRunProfiler();
  process.on('message', (msg: { type: string }) => {
    if (msg.type !== 'probe') return;
    const answer = (): void => void process.send!({ type: 'probe', stats: stats ? stats() : null, cpu: process.cpuUsage() } satisfies ServerMessage);
    if (profile === undefined) answer();
    else profile(answer);
  });
  // The parent is gone (finished or crashed): do not linger. Exiting through process.exit (also
  // on SIGTERM) lets --cpu-prof / --heap-prof write their files.
  process.on('disconnect', () => process.exit(0));
  process.on('SIGTERM', () => process.exit(0));
}

// ---------------------------------------------------------------------------------------------
// Orchestrator side
// ---------------------------------------------------------------------------------------------

/** A target server running in its own child process (`script` forked with `args`). */
export class Target<Id extends string = string> {
  readonly id: Id;
  readonly child: ChildProcess;
  readonly port: Promise<number>;
  readonly #probeWaiters: Array<{ resolve: (p: Probe) => void; reject: (e: Error) => void }> = [];

  constructor(id: Id, script: string, args: string[], flags: string[] = []) {
    this.id = id;
    this.child = fork(script, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [...process.execArgv, ...flags] });
    if (PIN !== undefined) pin(this.child.pid, PIN.server);
    this.port = new Promise((resolve, reject) => {
      this.child.once('exit', (code) => {
        const error = new Error(`server ${id} exited with code ${code}`);
        reject(error);
        // A probe sent to a dead server would never be answered.
        for (const waiter of this.#probeWaiters.splice(0)) waiter.reject(error);
      });
      this.child.on('message', (msg: ServerMessage) => {
        if (msg.type === 'ready') resolve(msg.port);
        else this.#probeWaiters.shift()?.resolve(msg);
      });
    });
    // Reported where the port is awaited; a server dying early must not also crash the
    // orchestrator as an unhandled rejection before it can stop the other servers.
    this.port.catch(() => undefined);
  }

  probe(): Promise<Probe> {
    return new Promise((resolve, reject) => {
      if (this.child.exitCode !== null || this.child.signalCode !== null) return reject(new Error(`server ${this.id} is not running`));
      this.#probeWaiters.push({ resolve, reject });
      this.child.send({ type: 'probe' });
    });
  }

  stop(): void {
    if (this.child.exitCode === null) this.child.kill();
  }
}

/** One GET of `path` (default `/`) on a fresh connection: status, headers and body length. */
export function get(port: number, path = '/'): Promise<{ status: number; headers: http.IncomingHttpHeaders; length: number }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let length = 0;
      res.on('data', (chunk: Buffer) => (length += chunk.length));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, length }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

/** wrk reports its summary through this script as one JSON line (latencies in microseconds). */
const WRK_SCRIPT = `
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('BENCH_JSON {"requests":%d,"duration":%d,"bytes":%d,"p50":%d,"p99":%d,"errors":%d}\\n',
    summary.requests, summary.duration, summary.bytes, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout))
end
`;

/** A wrk `request` function cycling through `pathList(paths)` (each wrk thread has its own counter). */
function wrkCycle(paths: number): string {
  return `
-- Formatted on first use: wrk adds the Host header after the script is loaded.
local paths = nil
local n = 0
request = function()
  if paths == nil then
    paths = {}
    for i = 0, ${paths - 1} do paths[#paths + 1] = wrk.format(nil, '/p/' .. i) end
  end
  n = n % #paths + 1
  return paths[n]
end
`;
}

/** Runs the load generator against URLs; `close()` removes its temporary files. */
export class Loader {
  readonly #config: LoadConfig;
  readonly #dir: string;
  readonly #script: string;

  constructor(config: LoadConfig) {
    this.#config = config;
    this.#dir = mkdtempSync(path.join(os.tmpdir(), 'stratacache-bench-'));
    this.#script = path.join(this.#dir, 'report.lua');
    writeFileSync(this.#script, config.paths === undefined ? WRK_SCRIPT : WRK_SCRIPT + wrkCycle(config.paths));
  }

  run(url: string, seconds: number): Promise<Measurement> {
    return this.#config.tool === 'wrk' ? this.#wrk(url, seconds) : this.#autocannon(url, seconds);
  }

  close(): void {
    rmSync(this.#dir, { recursive: true, force: true });
  }

  #wrk(url: string, seconds: number): Promise<Measurement> {
    const config = this.#config;
    return new Promise((resolve, reject) => {
      const threads = Math.min(config.threads, config.connections);
      const wrk = [`-t${threads}`, `-c${config.connections}`, `-d${seconds}s`, '-s', this.#script, url];
      const child = PIN === undefined ? spawn('wrk', wrk, { stdio: ['ignore', 'pipe', 'inherit'] }) : spawn('taskset', ['-c', PIN.load, 'wrk', ...wrk], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
      child.on('error', reject);
      child.on('close', (code) => {
        const line = out.split('\n').find((l) => l.startsWith('BENCH_JSON '));
        if (code !== 0 || line === undefined) return reject(new Error(`wrk exited with ${code}:\n${out}`));
        const j = JSON.parse(line.slice('BENCH_JSON '.length)) as { requests: number; duration: number; bytes: number; p50: number; p99: number; errors: number };
        resolve({
          rps: j.requests / (j.duration / 1e6),
          p50: j.p50 / 1000,
          p99: j.p99 / 1000,
          requests: j.requests,
          bytesPerResponse: j.requests > 0 ? j.bytes / j.requests : 0,
          errors: j.errors,
          cpuPerRequest: 0,
        });
      });
    });
  }

  #autocannon(url: string, seconds: number): Promise<Measurement> {
    return new Promise((resolve, reject) => {
      const child = fork(SELF, ['load'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      if (PIN !== undefined) pin(child.pid, PIN.load);
      child.once('message', (msg: LoadMessage) => (msg.type === 'result' ? resolve(msg.result) : reject(new Error(msg.message))));
      child.once('exit', (code) => reject(new Error(`autocannon child exited with code ${code} before reporting`)));
      child.send({ url, duration: seconds, connections: this.#config.connections, paths: this.#config.paths });
    });
  }
}

/** The autocannon child process (used when wrk is not available): runs one load and reports it. */
function runAutocannonChild(): void {
  process.once('message', (msg: { url: string; duration: number; connections: number; paths?: number }) => {
    void (async () => {
      try {
        const { default: autocannon } = await import('autocannon');
        const cycle = msg.paths === undefined ? undefined : pathList(msg.paths).map((p) => ({ path: p }));
        const r = await autocannon({ url: msg.url, connections: msg.connections, pipelining: 1, duration: msg.duration, ...(cycle === undefined ? {} : { requests: cycle }) });
        const requests = r.requests.total;
        const result: Measurement = {
          rps: requests / r.duration,
          p50: r.latency.p50,
          p99: r.latency.p99,
          requests,
          bytesPerResponse: requests > 0 ? r.throughput.total / requests : 0,
          errors: r.errors + r.timeouts + r.non2xx,
          cpuPerRequest: 0,
        };
        process.send!({ type: 'result', result } satisfies LoadMessage);
      } catch (error) {
        process.send!({ type: 'error', message: String(error) } satisfies LoadMessage);
      }
      process.disconnect();
    })();
  });
}

/**
 * Measures one target: a probe before and after the run gives the server's CPU time per request
 * and how busy it was (CPU time over wall time: well under 100% means it was starved or waiting,
 * not saturated), and its cache counters, which must show only hits. Returns the measurement, a
 * log line and the problems found.
 */
async function measure(target: Target, loader: Loader, seconds: number): Promise<{ m: Measurement; line: string; problems: string[] }> {
  const url = `http://127.0.0.1:${await target.port}/`;
  const probe0 = await target.probe();
  const m = await loader.run(url, seconds);
  const probe1 = await target.probe();
  const cpuUsed = probe1.cpu.user + probe1.cpu.system - probe0.cpu.user - probe0.cpu.system;
  m.cpuPerRequest = m.requests > 0 ? cpuUsed / m.requests : 0;
  const busy = (cpuUsed / (seconds * 1e6)) * 100;
  const problems: string[] = [];
  let hitNote = '';
  if (probe0.stats !== null && probe1.stats !== null) {
    const hits = probe1.stats.hits - probe0.stats.hits;
    const misses = probe1.stats.misses - probe0.stats.misses;
    const passes = probe1.stats.passes - probe0.stats.passes;
    hitNote = `  cache: +${hits} hits, +${misses} misses, +${passes} passes`;
    // In-flight requests at the end of a run are served but not counted by the generator.
    if (misses !== 0 || passes !== 0 || hits < m.requests) problems.push(`${target.id}: not all hits (${hitNote.trim()}, ${m.requests} requests)`);
  }
  if (m.errors > 0) problems.push(`${target.id}: ${m.errors} errors / non-2xx`);
  const line =
    `${fmt(m.rps).padStart(7)} req/s  p50 ${fmt(m.p50, 2)} ms  p99 ${fmt(m.p99, 2)} ms  ` + `cpu ${fmt(m.cpuPerRequest, 1)} µs/req, busy ${fmt(busy)}%  ${fmt(m.requests)} requests${hitNote}`;
  return { m, line, problems };
}

/**
 * Runs every target for `rounds` rounds (odd rounds in reverse order, so drift on a shared
 * machine does not always favour the same target), each run after `warmup` seconds of discarded
 * load, logging one line per run. Returns the measurements by target id and the problems found.
 */
export async function runRounds(
  targets: readonly Target[],
  loader: Loader,
  config: { rounds: number; warmup: number; duration: number; /** Number of the first round (default 0), for a caller running rounds one at a time. */ firstRound?: number },
  label: (target: Target) => string,
): Promise<{ results: Map<string, Measurement[]>; problems: string[] }> {
  const results = new Map<string, Measurement[]>();
  const problems: string[] = [];
  const first = config.firstRound ?? 0;
  for (let round = first; round < first + config.rounds; round++) {
    const order = round % 2 === 0 ? targets : [...targets].reverse();
    for (const target of order) {
      if (config.warmup > 0) await loader.run(`http://127.0.0.1:${await target.port}/`, config.warmup);
      const { m, line, problems: found } = await measure(target, loader, config.duration);
      for (const p of found) problems.push(`round ${round + 1} ${p}`);
      console.log(`round ${round + 1}  ${label(target)} ${line}`);
      let list = results.get(target.id);
      if (list === undefined) results.set(target.id, (list = []));
      list.push(m);
    }
  }
  return { results, problems };
}

/** Stops the targets and the loader when `run` settles or on Ctrl-C. */
export async function withTargets<T>(targets: readonly Target[], loader: Loader, run: () => Promise<T>): Promise<T> {
  const stop = (): void => {
    for (const t of targets) t.stop();
    loader.close();
  };
  process.once('SIGINT', () => {
    stop();
    process.exit(130);
  });
  try {
    return await run();
  } finally {
    stop();
  }
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function fmt(n: number, digits = 0): string {
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** Rows as aligned text columns: the first left-aligned, the others right-aligned. */
export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')).join('\n');
}

if (process.argv[1] === SELF && process.argv[2] === 'load') runAutocannonChild();
