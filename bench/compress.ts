/**
 * Compressed hits benchmark (issue 12): hit throughput of the cache serving stored compressed
 * variants, against Express with the `compression` middleware (which compresses on every
 * request), in one run.
 *
 * Run: `npm run bench:compress` (or `npx tsx bench/compress.ts`).
 *
 * Targets, each its own child process on 127.0.0.1, all serving the same ~60 KB HTML page:
 *   x  Express 5 + `compression()` (its defaults), `Accept-Encoding: gzip`: gzip per request
 *   g  `http.createServer(cache.wrap(expressApp))` with `compress: { encodings: ['gzip'] }`,
 *      `Accept-Encoding: gzip`: the stored gzip variant (warmed first: every request is a hit)
 *   b  the same with `compress: true`, `Accept-Encoding: br, gzip`: the stored brotli variant
 *
 * Load: wrk (apt-get install wrk) with keep-alive connections; each target is warmed, checked
 * (the right Content-Encoding; for the cache, X-Cache: HIT and no render during the run), then
 * measured. The report gives req/s, latency, bytes per response, server CPU per request, and
 * each target's ratio to x.
 *
 * Environment (optional): BENCH_DURATION seconds per run (10), BENCH_CONNECTIONS (50),
 * BENCH_ROUNDS (2).
 */
import { execFileSync, fork, spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { fileURLToPath } from 'node:url';

type Id = 'x' | 'g' | 'b';
const LABELS: Record<Id, string> = {
  x: 'express + compression() (gzip per request)',
  g: 'cache.wrap(express), stored gzip',
  b: 'cache.wrap(express), stored br',
};
const ACCEPT: Record<Id, string> = { x: 'gzip', g: 'gzip', b: 'br, gzip' };
const PAGE = `<!doctype html><html><head><title>bench</title></head><body>${Array.from({ length: 600 }, (_, i) => `<article><h2>Item ${i}</h2><p>Description of item ${i}, with the words a catalogue page repeats.</p></article>`).join('\n')}</body></html>`;

async function server(id: Id): Promise<void> {
  const { default: express } = await import('express');
  const app = express();
  let renders = 0;
  if (id === 'x') {
    const { default: compression } = await import('compression');
    app.use(compression());
  }
  app.get('/', (_req, res) => {
    renders++;
    res.set('cache-control', 'public, max-age=3600').type('html').send(PAGE);
  });
  let handler: http.RequestListener = app;
  if (id !== 'x') {
    const { createCache } = await import('../src/index.js');
    const cache = createCache({ compress: id === 'b' ? true : { encodings: ['gzip'] } });
    handler = cache.wrap(app);
    process.on('message', (m) => {
      if (m === 'stats') process.send!({ renders, compressions: cache.stats().compressions, cpu: process.cpuUsage() });
    });
  } else {
    process.on('message', (m) => {
      if (m === 'stats') process.send!({ renders, compressions: 0, cpu: process.cpuUsage() });
    });
  }
  const s = http.createServer(handler);
  s.listen(0, '127.0.0.1', () => process.send!({ port: (s.address() as { port: number }).port }));
}

interface Probe {
  renders: number;
  compressions: number;
  cpu: NodeJS.CpuUsage;
}

function ask(child: ChildProcess): Promise<Probe> {
  return new Promise((resolve) => {
    child.once('message', (m) => resolve(m as Probe));
    child.send('stats');
  });
}

function get(port: number, accept: string): Promise<{ headers: http.IncomingHttpHeaders; bytes: number }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/', headers: { 'accept-encoding': accept } }, (res) => {
        let bytes = 0;
        res.on('data', (c: Buffer) => (bytes += c.length));
        res.on('end', () => resolve({ headers: res.headers, bytes }));
      })
      .on('error', reject);
  });
}

function wrk(port: number, accept: string, seconds: number, connections: number): Promise<{ rps: number; requests: number; p50: number; p99: number }> {
  return new Promise((resolve, reject) => {
    const args = ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', '-H', `Accept-Encoding: ${accept}`, `http://127.0.0.1:${port}/`];
    const p = spawn('wrk', args);
    let out = '';
    p.stdout.on('data', (c: Buffer) => (out += c.toString()));
    p.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`wrk exited ${code}: ${out}`));
      const requests = Number(/(\d+) requests in/.exec(out)?.[1]);
      const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
      const ms = (label: string): number => {
        const m = new RegExp(`${label}%\\s+([\\d.]+)(us|ms|s)`).exec(out);
        if (!m) return Number.NaN;
        return Number(m[1]) * (m[2] === 'us' ? 0.001 : m[2] === 's' ? 1000 : 1);
      };
      resolve({ rps, requests, p50: ms('50'), p99: ms('99') });
    });
    p.on('error', reject);
  });
}

async function main(): Promise<void> {
  if (process.argv[2] === 'server') return server(process.argv[3] as Id);
  try {
    execFileSync('wrk', ['--version'], { stdio: 'ignore' });
  } catch (error) {
    // wrk prints its version and exits 1; only a missing binary throws ENOENT.
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new Error('bench:compress needs wrk: apt-get install wrk');
  }
  const duration = Number(process.env.BENCH_DURATION ?? 10);
  const connections = Number(process.env.BENCH_CONNECTIONS ?? 50);
  const rounds = Number(process.env.BENCH_ROUNDS ?? 2);
  const self = fileURLToPath(import.meta.url);
  const ids: Id[] = ['x', 'g', 'b'];
  const children = new Map<Id, { child: ChildProcess; port: number }>();
  for (const id of ids) {
    const child = fork(self, ['server', id], { execArgv: ['--import', 'tsx'] });
    const port = await new Promise<number>((resolve) => child.once('message', (m) => resolve((m as { port: number }).port)));
    children.set(id, { child, port });
  }
  const results = new Map<Id, Array<{ rps: number; p50: number; p99: number; cpuPerReq: number; bytes: number }>>();
  try {
    for (let round = 0; round < rounds; round++) {
      for (const id of round % 2 === 0 ? ids : [...ids].reverse()) {
        const { child, port } = children.get(id)!;
        // Warm (the cache stores, then compresses in the background) and check what is served.
        await get(port, ACCEPT[id]);
        for (let i = 0; i < 100 && id !== 'x' && (await ask(child)).compressions === 0; i++) await new Promise((r) => setTimeout(r, 20));
        const check = await get(port, ACCEPT[id]);
        const want = id === 'b' ? 'br' : 'gzip';
        if (check.headers['content-encoding'] !== want) throw new Error(`${id}: expected ${want}, got ${String(check.headers['content-encoding'])}`);
        if (id !== 'x' && check.headers['x-cache'] !== 'HIT') throw new Error(`${id}: expected a HIT, got ${String(check.headers['x-cache'])}`);
        await wrk(port, ACCEPT[id], 2, connections);
        const before = await ask(child);
        const run = await wrk(port, ACCEPT[id], duration, connections);
        const after = await ask(child);
        if (id !== 'x' && after.renders !== before.renders) throw new Error(`${id}: the handler rendered during the run`);
        const cpu = after.cpu.user + after.cpu.system - before.cpu.user - before.cpu.system;
        const row = { rps: run.rps, p50: run.p50, p99: run.p99, cpuPerReq: cpu / run.requests, bytes: check.bytes };
        console.log(`round ${round + 1} ${id}: ${run.rps.toFixed(0)} req/s, p50 ${run.p50} ms, p99 ${run.p99} ms, ${row.cpuPerReq.toFixed(1)} us CPU/req, ${check.bytes} bytes`);
        (results.get(id) ?? results.set(id, []).get(id)!).push(row);
      }
    }
  } finally {
    for (const { child } of children.values()) child.kill();
  }
  const median = (xs: number[]): number => {
    const sorted = [...xs].sort((a, b) => a - b);
    const mid = Math.floor(sorted.length / 2);
    return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  };
  const base = median(results.get('x')!.map((r) => r.rps));
  console.log(`\nmedian of ${rounds} rounds, ${connections} connections, ${duration} s each, a ${Buffer.byteLength(PAGE)} byte page:`);
  console.log('| target | req/s | ratio to x | p50 ms | p99 ms | server CPU µs/req | bytes sent |');
  console.log('| --- | --- | --- | --- | --- | --- | --- |');
  for (const id of ids) {
    const rows = results.get(id)!;
    const rps = median(rows.map((r) => r.rps));
    console.log(`| ${id}: ${LABELS[id]} | ${rps.toFixed(0)} | ${(rps / base).toFixed(2)} | ${median(rows.map((r) => r.p50))} | ${median(rows.map((r) => r.p99))} | ${median(rows.map((r) => r.cpuPerReq)).toFixed(1)} | ${rows[0]!.bytes} |`);
  }
}

await main();
