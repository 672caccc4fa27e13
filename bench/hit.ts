/**
 * Hit-path benchmark (issue 2): throughput and latency of cache hits against a plain Node server
 * answering the same prebuilt body, in one run.
 *
 * Run: `npx tsx bench/hit.ts` (or `npm run bench`).
 *
 * Targets, each its own child process listening on 127.0.0.1 (so the load generator never shares
 * an event loop with a server):
 *   a  plain `http.createServer` answering a prebuilt buffer (writeHead + end(buf))
 *   b  `http.createServer(cache.wrap(handler))`, the handler sending the same body with
 *      `Cache-Control: max-age=3600` (cache warmed first: every measured request is a hit)
 *   c  Express 5 alone, the same route (`res.set(...).type(...).send(buf)`, Express defaults: that
 *      includes the ETag it hashes from the body on every response)
 *   d  Express with `app.use(cache.middleware())` in front of that route (hits)
 *   e  `http.createServer(cache.wrap(expressApp))` (hits answered before Express runs)
 *
 * Load generator: wrk when it is on PATH (a separate native process), otherwise autocannon run
 * in its own child process. Keep-alive connections, pipelining 1. Each round warms every target
 * up, then measures it; odd rounds run the targets in reverse order so drift on a shared machine
 * does not always favour the same target. The table reports the median over rounds and each
 * number's ratio to the plain server (a). Around each measured run the server process is probed
 * for its cache counters, to prove the run was all hits (misses and passes must not move), and
 * for its CPU time, reported as server CPU µs per request: on a machine shared with other work
 * that is steadier than req/s, since it measures what a request costs rather than what the
 * scheduler granted. Each run's line also shows how busy the server was (CPU time over wall
 * time): a server well under 100% busy was starved or waiting, and its req/s says more about
 * the machine than about the code.
 *
 * Environment variables (all optional):
 *   BENCH_DURATION     seconds per measured run                              (default 10)
 *   BENCH_WARMUP       seconds of discarded load before each measured run    (default 2)
 *   BENCH_CONNECTIONS  keep-alive connections                                (default 50)
 *   BENCH_ROUNDS       rounds over all targets                               (default 2)
 *   BENCH_THREADS      wrk threads (ignored by autocannon)                   (default 1)
 *   BENCH_TOOL         'wrk' or 'autocannon'                      (default: wrk if found)
 *   BENCH_TARGETS      comma-separated subset of a,h,b,c,d,e                  (default all)
 *   BENCH_BODY_BYTES   body size in bytes                                    (default 20480)
 *   BENCH_SERVER_FLAGS extra node flags for the server processes, space-separated, e.g.
 *                      '--cpu-prof --cpu-prof-dir=/tmp/prof' to profile them  (default none)
 */
import { execFileSync, fork, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CacheStats } from '../src/index.js';

const SELF = fileURLToPath(import.meta.url);
const serverFlags = (process.env.BENCH_SERVER_FLAGS ?? '').split(' ').filter((f) => f !== '');
const CACHE_CONTROL = 'max-age=3600';

type TargetId = 'a' | 'h' | 'b' | 'c' | 'd' | 'e';
const TARGETS: Record<TargetId, string> = {
  a: 'plain node http',
  h: "plain, a hit's headers",
  b: 'cache.wrap(handler)',
  c: 'express alone',
  d: 'express + cache.middleware()',
  e: 'cache.wrap(expressApp)',
};
const CACHED: ReadonlySet<TargetId> = new Set<TargetId>(['b', 'd', 'e']);

interface Config {
  duration: number;
  warmup: number;
  connections: number;
  rounds: number;
  threads: number;
  tool: 'wrk' | 'autocannon';
  targets: TargetId[];
  bodyBytes: number;
}

/** One measured run. Latencies in ms. */
interface Measurement {
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
interface Probe {
  stats: CacheStats | null;
  /** process.cpuUsage() of the server: user and system CPU time in microseconds. */
  cpu: NodeJS.CpuUsage;
}
type ServerMessage = { type: 'ready'; port: number } | ({ type: 'probe' } & Probe);
type LoadMessage = { type: 'result'; result: Measurement } | { type: 'error'; message: string };

function intEnv(name: string, fallback: number, min: number): number {
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

function readConfig(): Config {
  const toolEnv = process.env.BENCH_TOOL;
  if (toolEnv !== undefined && toolEnv !== '' && toolEnv !== 'wrk' && toolEnv !== 'autocannon') {
    throw new TypeError(`BENCH_TOOL must be 'wrk' or 'autocannon', got ${JSON.stringify(toolEnv)}`);
  }
  let tool: Config['tool'] = toolEnv === 'autocannon' ? 'autocannon' : 'wrk';
  if (tool === 'wrk' && !hasWrk()) {
    if (toolEnv === 'wrk') throw new Error('BENCH_TOOL=wrk but wrk is not on PATH');
    tool = 'autocannon';
  }
  const targets = (process.env.BENCH_TARGETS ?? 'a,h,b,c,d,e')
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t !== '');
  for (const t of targets) if (!(t in TARGETS)) throw new TypeError(`BENCH_TARGETS: unknown target ${JSON.stringify(t)} (use a,h,b,c,d,e)`);
  if (targets.length === 0) throw new TypeError('BENCH_TARGETS is empty');
  return {
    duration: intEnv('BENCH_DURATION', 10, 1),
    warmup: intEnv('BENCH_WARMUP', 2, 0),
    connections: intEnv('BENCH_CONNECTIONS', 50, 1),
    rounds: intEnv('BENCH_ROUNDS', 2, 1),
    threads: intEnv('BENCH_THREADS', 1, 1),
    tool,
    targets: targets as TargetId[],
    bodyBytes: intEnv('BENCH_BODY_BYTES', 20 * 1024, 1),
  };
}

// ---------------------------------------------------------------------------------------------
// Server child process
// ---------------------------------------------------------------------------------------------

async function runServer(id: TargetId, bodyBytes: number): Promise<void> {
  // A text body of the requested size, built once.
  const body = Buffer.alloc(bodyBytes, 'stratacache hit-path benchmark body. ');
  const { createCache } = await import('../src/index.js');
  const cache = CACHED.has(id) ? createCache() : undefined;

  const plain = (_req: IncomingMessage, res: ServerResponse): void => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
    res.end(body);
  };
  // (h) A plain server that writes exactly the header list a cache hit writes (stored headers,
  // Content-Length, Age and both status headers), so (h) vs (a) is the cost of the headers
  // themselves and (b) vs (h) the cost of the cache's own work.
  const hitHeaders = ['content-type', 'text/plain', 'cache-control', CACHE_CONTROL, 'content-length', String(body.length), 'age', '0', 'x-cache', 'HIT', 'cache-status', 'stratacache; hit'];
  const plainWithHitHeaders = (_req: IncomingMessage, res: ServerResponse): void => {
    res.writeHead(200, hitHeaders);
    res.end(body);
  };
  const origin = (_req: IncomingMessage, res: ServerResponse): void => {
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': CACHE_CONTROL, 'content-length': body.length });
    res.end(body);
  };
  const expressApp = async (withMiddleware: boolean) => {
    const { default: express } = await import('express');
    const app = express();
    if (withMiddleware) app.use(cache!.middleware());
    app.get('/', (_req, res) => {
      res.set('cache-control', CACHE_CONTROL).type('text/plain').send(body);
    });
    return app;
  };

  let handler: (req: IncomingMessage, res: ServerResponse) => unknown;
  switch (id) {
    case 'a':
      handler = plain;
      break;
    case 'h':
      handler = plainWithHitHeaders;
      break;
    case 'b':
      handler = cache!.wrap(origin);
      break;
    case 'c':
      handler = await expressApp(false);
      break;
    case 'd':
      handler = await expressApp(true);
      break;
    case 'e':
      handler = cache!.wrap(await expressApp(false));
      break;
  }
  const server = http.createServer(handler);
  server.listen(0, '127.0.0.1', () => {
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('unexpected server address');
    process.send!({ type: 'ready', port: address.port } satisfies ServerMessage);
  });
  process.on('message', (msg: { type: string }) => {
    if (msg.type === 'probe') process.send!({ type: 'probe', stats: cache ? cache.stats() : null, cpu: process.cpuUsage() } satisfies ServerMessage);
  });
  // The parent is gone (finished or crashed): do not linger. Exiting through process.exit (also
  // on SIGTERM) lets --cpu-prof / --heap-prof write their files.
  process.on('disconnect', () => process.exit(0));
  process.on('SIGTERM', () => process.exit(0));
}

// ---------------------------------------------------------------------------------------------
// Autocannon child process (used when wrk is not available)
// ---------------------------------------------------------------------------------------------

function runAutocannonChild(): void {
  process.once('message', (msg: { url: string; duration: number; connections: number }) => {
    void (async () => {
      try {
        const { default: autocannon } = await import('autocannon');
        const r = await autocannon({ url: msg.url, connections: msg.connections, pipelining: 1, duration: msg.duration });
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

// ---------------------------------------------------------------------------------------------
// Orchestrator
// ---------------------------------------------------------------------------------------------

/** wrk reports its summary through this script as one JSON line (latencies in microseconds). */
const WRK_SCRIPT = `
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('BENCH_JSON {"requests":%d,"duration":%d,"bytes":%d,"p50":%d,"p99":%d,"errors":%d}\\n',
    summary.requests, summary.duration, summary.bytes, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout))
end
`;

class Target {
  readonly id: TargetId;
  readonly child: ChildProcess;
  readonly port: Promise<number>;
  readonly #probeWaiters: Array<{ resolve: (p: Probe) => void; reject: (e: Error) => void }> = [];

  constructor(id: TargetId, bodyBytes: number) {
    this.id = id;
    this.child = fork(SELF, ['server', id, String(bodyBytes)], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      execArgv: [...process.execArgv, ...serverFlags],
    });
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

function get(port: number): Promise<{ status: number; headers: http.IncomingHttpHeaders; length: number }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
      let length = 0;
      res.on('data', (chunk: Buffer) => (length += chunk.length));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, length }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

/** Fills the cache (first request) and checks that a second request is a hit with the whole body. */
async function warmCache(target: Target, bodyBytes: number): Promise<void> {
  const port = await target.port;
  await get(port);
  const r = await get(port);
  if (r.status !== 200 || r.length !== bodyBytes) throw new Error(`${target.id}: expected 200 with ${bodyBytes} bytes, got ${r.status} with ${r.length}`);
  if (CACHED.has(target.id) && r.headers['x-cache'] !== 'HIT') {
    throw new Error(`${target.id}: second request was not a hit (x-cache: ${String(r.headers['x-cache'])})`);
  }
}

function runWrk(url: string, seconds: number, config: Config, script: string): Promise<Measurement> {
  return new Promise((resolve, reject) => {
    const threads = Math.min(config.threads, config.connections);
    const child = spawn('wrk', [`-t${threads}`, `-c${config.connections}`, `-d${seconds}s`, '-s', script, url], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
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

function runAutocannon(url: string, seconds: number, config: Config): Promise<Measurement> {
  return new Promise((resolve, reject) => {
    const child = fork(SELF, ['load'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    child.once('message', (msg: LoadMessage) => (msg.type === 'result' ? resolve(msg.result) : reject(new Error(msg.message))));
    child.once('exit', (code) => reject(new Error(`autocannon child exited with code ${code} before reporting`)));
    child.send({ url, duration: seconds, connections: config.connections });
  });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function fmt(n: number, digits = 0): string {
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')).join('\n');
}

async function main(): Promise<void> {
  const config = readConfig();
  const cpus = os.cpus();
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
  console.log('stratacache hit-path benchmark');
  console.log(`node ${process.version}, ${os.platform()} ${os.arch()}, ${cpus.length} x ${cpus[0]?.model ?? 'unknown CPU'}`);
  console.log(`load avg at start: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  console.log(`load generator: ${toolVersion}${config.tool === 'wrk' ? `, ${config.threads} thread(s)` : ' (own process)'}`);
  console.log(
    `${config.connections} keep-alive connections, pipelining 1, body ${config.bodyBytes} B, ` +
      `${config.warmup} s warm-up + ${config.duration} s measured per target, ${config.rounds} round(s), alternating order`,
  );
  console.log('');

  const dir = mkdtempSync(path.join(os.tmpdir(), 'stratacache-bench-'));
  const script = path.join(dir, 'report.lua');
  writeFileSync(script, WRK_SCRIPT);
  const targets = config.targets.map((id) => new Target(id, config.bodyBytes));
  const stop = (): void => {
    for (const t of targets) t.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('SIGINT', () => {
    stop();
    process.exit(130);
  });

  const results = new Map<TargetId, Measurement[]>();
  const problems: string[] = [];
  try {
    for (const t of targets) await warmCache(t, config.bodyBytes);
    const load = (url: string, seconds: number): Promise<Measurement> =>
      config.tool === 'wrk' ? runWrk(url, seconds, config, script) : runAutocannon(url, seconds, config);

    for (let round = 0; round < config.rounds; round++) {
      const order = round % 2 === 0 ? targets : [...targets].reverse();
      for (const t of order) {
        const url = `http://127.0.0.1:${await t.port}/`;
        if (config.warmup > 0) await load(url, config.warmup);
        const probe0 = await t.probe();
        const m = await load(url, config.duration);
        const probe1 = await t.probe();
        const cpuUsed = probe1.cpu.user + probe1.cpu.system - probe0.cpu.user - probe0.cpu.system;
        m.cpuPerRequest = m.requests > 0 ? cpuUsed / m.requests : 0;
        // Share of one core the server used: well under 100% means it was starved or waiting
        // (another process had the CPU, or the load generator could not keep up), not saturated.
        const busy = (cpuUsed / (config.duration * 1e6)) * 100;
        const before = probe0.stats;
        const after = probe1.stats;
        let hitNote = '';
        if (before !== null && after !== null) {
          const hits = after.hits - before.hits;
          const misses = after.misses - before.misses;
          const passes = after.passes - before.passes;
          hitNote = `  cache: +${hits} hits, +${misses} misses, +${passes} passes`;
          // In-flight requests at the end of a run are served but not counted by the generator.
          if (misses !== 0 || passes !== 0 || hits < m.requests) problems.push(`round ${round + 1} ${t.id}: not all hits (${hitNote.trim()}, ${m.requests} requests)`);
        }
        if (m.errors > 0) problems.push(`round ${round + 1} ${t.id}: ${m.errors} errors / non-2xx`);
        console.log(
          `round ${round + 1}  ${t.id} ${TARGETS[t.id].padEnd(29)} ${fmt(m.rps).padStart(7)} req/s  ` +
            `p50 ${fmt(m.p50, 2)} ms  p99 ${fmt(m.p99, 2)} ms  cpu ${fmt(m.cpuPerRequest, 1)} µs/req, busy ${fmt(busy)}%  ` +
            `${fmt(m.requests)} requests${hitNote}`,
        );
        let list = results.get(t.id);
        if (list === undefined) results.set(t.id, (list = []));
        list.push(m);
      }
    }
  } finally {
    stop();
  }

  const summary = new Map<TargetId, { rps: number; p50: number; p99: number; cpu: number; bytes: number; min: number; max: number }>();
  for (const [id, ms] of results) {
    const rps = ms.map((m) => m.rps);
    summary.set(id, {
      rps: median(rps),
      p50: median(ms.map((m) => m.p50)),
      p99: median(ms.map((m) => m.p99)),
      cpu: median(ms.map((m) => m.cpuPerRequest)),
      bytes: median(ms.map((m) => m.bytesPerResponse)),
      min: Math.min(...rps),
      max: Math.max(...rps),
    });
  }
  const base = summary.get('a');
  const ratio = (v: number, b: number | undefined): string => (b === undefined || b === 0 ? '-' : `${(v / b).toFixed(2)}x`);
  const rows: string[][] = [['target', 'req/s', 'vs a', 'req/s range', 'p50 ms', 'vs a', 'p99 ms', 'vs a', 'cpu µs/req', 'vs a', 'B/resp']];
  for (const id of config.targets) {
    const s = summary.get(id)!;
    rows.push([
      `${id} ${TARGETS[id]}`,
      fmt(s.rps),
      ratio(s.rps, base?.rps),
      `${fmt(s.min)}-${fmt(s.max)}`,
      fmt(s.p50, 2),
      ratio(s.p50, base?.p50),
      fmt(s.p99, 2),
      ratio(s.p99, base?.p99),
      fmt(s.cpu, 1),
      ratio(s.cpu, base?.cpu),
      fmt(s.bytes),
    ]);
  }
  console.log('');
  console.log(`median of ${config.rounds} round(s); "vs a" is the ratio to the plain server (req/s: higher is better; latency and server CPU per request: lower is better)`);
  console.log(table(rows));
  console.log(`load avg at end: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  if (problems.length > 0) {
    console.log('');
    for (const p of problems) console.log(`WARNING: ${p}`);
    process.exitCode = 1;
  }
}

const mode = process.argv[2];
if (mode === 'server') {
  await runServer(process.argv[3] as TargetId, Number(process.argv[4]));
} else if (mode === 'load') {
  runAutocannonChild();
} else {
  await main();
}
