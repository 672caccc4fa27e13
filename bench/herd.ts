/**
 * Thundering herd: 500 concurrent cold requests for one URL whose render waits 20 ms and burns
 * 5 ms of CPU. Single flight must render it once; every client gets the page.
 *
 * Run: `npm run bench:herd` (or `npx tsx bench/herd.ts`).
 *
 * The server (`http.createServer(cache.wrap(handler))` on 127.0.0.1) runs in a child process, so
 * the clients (node:http with a keep-alive agent, one socket per request) never share its event
 * loop. Prints how many times the origin rendered, the statuses seen, and p50/p99/max latency.
 * Exits 1 when the origin rendered more than once or a client got something other than the page.
 *
 * Environment variables (all optional):
 *   BENCH_HERD_CLIENTS   concurrent requests          (default 500)
 *   BENCH_HERD_WAIT      render wait in ms             (default 20)
 *   BENCH_HERD_CPU       render CPU burn in ms         (default 5)
 */
import { fork } from 'node:child_process';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import { createCache } from '../src/index.js';

function intEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`${name} must be a non-negative integer, got ${JSON.stringify(raw)}`);
  return n;
}

const CLIENTS = intEnv('BENCH_HERD_CLIENTS', 500);
const WAIT = intEnv('BENCH_HERD_WAIT', 20);
const CPU = intEnv('BENCH_HERD_CPU', 5);

/** The server process: answers `renders` on /__renders, everything else through the cache. */
async function server(): Promise<void> {
  let renders = 0;
  const cache = createCache();
  const handler = async (_req: IncomingMessage, res: ServerResponse): Promise<void> => {
    renders++;
    await new Promise((resolve) => setTimeout(resolve, WAIT));
    const until = performance.now() + CPU;
    while (performance.now() < until); // burn CPU, as a template engine would
    res.writeHead(200, { 'content-type': 'text/html', 'cache-control': 'max-age=60' });
    res.end('<h1>the page</h1>');
  };
  const wrapped = cache.wrap(handler);
  const srv = http.createServer((req, res) => {
    if (req.url === '/__renders') return void res.end(String(renders));
    wrapped(req, res);
  });
  srv.listen(0, '127.0.0.1', () => process.send!({ port: (srv.address() as { port: number }).port }));
  process.on('disconnect', () => srv.close(() => void cache.close()));
}

function get(port: number, path: string, agent: http.Agent): Promise<{ status: number; body: string; ms: number }> {
  const start = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), ms: performance.now() - start }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function main(): Promise<void> {
  const child = fork(fileURLToPath(import.meta.url), ['--server'], { execArgv: process.execArgv, env: process.env });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m: { port: number }) => resolve(m.port));
    child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
  const agent = new http.Agent({ keepAlive: true, maxSockets: CLIENTS });
  try {
    const results = await Promise.all(Array.from({ length: CLIENTS }, () => get(port, '/page', agent)));
    const renders = Number((await get(port, '/__renders', agent)).body);
    const ms = results.map((r) => r.ms).sort((a, b) => a - b);
    const statuses = new Map<number, number>();
    for (const r of results) statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
    const wrong = results.filter((r) => r.status !== 200 || r.body !== '<h1>the page</h1>').length;
    console.log(`stratacache herd: ${CLIENTS} concurrent cold requests for one URL (render waits ${WAIT} ms, burns ${CPU} ms CPU)`);
    console.log(`node ${process.version}, ${process.platform} ${process.arch}`);
    console.log(`renders   ${renders}`);
    console.log(`statuses  ${[...statuses].map(([s, n]) => `${s}: ${n}`).join(', ')}${wrong > 0 ? `  (${wrong} without the page)` : ''}`);
    console.log(`latency   p50 ${percentile(ms, 50).toFixed(1)} ms  p99 ${percentile(ms, 99).toFixed(1)} ms  max ${ms.at(-1)!.toFixed(1)} ms`);
    if (renders !== 1 || wrong > 0) process.exitCode = 1;
  } finally {
    agent.destroy();
    child.disconnect();
  }
}

if (process.argv.includes('--server')) void server();
else await main();
