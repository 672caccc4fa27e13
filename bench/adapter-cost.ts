/**
 * In-process companion to bench/adapters.ts: the JavaScript CPU time of one request through each
 * framework's ceiling and through its cached target (a hit), the very listeners adapters.ts
 * serves, driven with real IncomingMessage/ServerResponse objects over a socket that discards
 * what it is given. No kernel time, no load generator: what is left is the framework, Node's
 * request/response machinery and the cache's adapter and hit path. Reports the median over
 * batches of process CPU ns per request for each target and the difference cached - ceiling.
 *
 * Run: `npx tsx bench/adapter-cost.ts`.
 *
 * Environment variables (all optional):
 *   BENCH_FRAMEWORKS     comma-separated subset of adapters.ts's frameworks   (default all)
 *   BENCH_COST_REQUESTS  requests per batch                                   (default 10000)
 *   BENCH_COST_BATCHES   batches per target, alternating ceiling and cached   (default 9)
 *   BENCH_BODY_BYTES     body size in bytes                                   (default 20480)
 *   BENCH_COST_ONLY      'ceiling' or 'cached': measure that target only (to profile it)
 */
import { fork } from 'node:child_process';
import { once } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { setImmediate as nextLoop } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { createCache } from '../src/index.js';
import { FRAMEWORKS, listenerFor, type Framework } from './adapters.js';
import { exchange } from './discard.js';
import { intEnv, median } from './harness.js';

type Listener = (req: IncomingMessage, res: ServerResponse) => unknown;

/** One request through `listener`, its response head (status line and headers) once finished. */
async function probe(listener: Listener): Promise<string> {
  const { req, res, socket } = exchange(true);
  const finished = new Promise((resolve) => res.once('finish', resolve));
  void listener(req, res);
  await finished;
  const text = Buffer.concat(socket.kept!).toString('latin1');
  return text.slice(0, text.indexOf('\r\n\r\n'));
}

/** Runs `count` requests through `listener`; returns process CPU µs spent. */
async function batch(listener: Listener, count: number): Promise<number> {
  const start = process.cpuUsage();
  for (let i = 0; i < count; i++) {
    const { req, res } = exchange();
    void listener(req, res);
    // Let finish/close callbacks and promises run now and then, as a serving event loop would.
    if ((i & 63) === 63) await nextLoop();
  }
  await nextLoop();
  const used = process.cpuUsage(start);
  return used.user + used.system;
}

async function main(): Promise<void> {
  const frameworks = (process.env.BENCH_FRAMEWORKS ?? FRAMEWORKS.join(',')).split(',').map((f) => f.trim()) as Framework[];
  for (const f of frameworks) if (!FRAMEWORKS.includes(f)) throw new TypeError(`BENCH_FRAMEWORKS: unknown framework ${JSON.stringify(f)}`);
  // For profiling one side: BENCH_COST_ONLY=ceiling|cached runs the batches of that target only.
  const only = process.env.BENCH_COST_ONLY;
  const requests = intEnv('BENCH_COST_REQUESTS', 10_000, 1);
  const batches = intEnv('BENCH_COST_BATCHES', 9, 1);
  const body = Buffer.alloc(intEnv('BENCH_BODY_BYTES', 20 * 1024, 1), 'stratacache adapter benchmark body. ');
  if (process.env.BENCH_COST_CHILD === undefined) {
    console.log('stratacache adapter hit cost, in process (no sockets): process CPU ns per request, median of batches');
    console.log(`node ${process.version}; ${batches} batches x ${requests} requests per target, alternating; body ${body.length} B; one process per framework`);
  }
  if (frameworks.length > 1) {
    // One process per framework: in a shared one, the hit path's call sites would see every
    // adapter's response type (ServerResponse, the Fetch adapter's HitResponse) and run
    // polymorphic, which no real server does.
    for (const framework of frameworks) {
      const child = fork(fileURLToPath(import.meta.url), [], { env: { ...process.env, BENCH_FRAMEWORKS: framework, BENCH_COST_CHILD: '1' }, execArgv: process.execArgv });
      const [code] = (await once(child, 'exit')) as [number | null];
      if (code !== 0) throw new Error(`${framework}: exited with ${code}`);
    }
    return;
  }
  for (const framework of frameworks) {
    const cache = createCache();
    const ceiling = await listenerFor(framework, body, undefined);
    const cached = await listenerFor(framework, body, cache);
    await probe(ceiling);
    await probe(cached);
    const head = await probe(cached);
    if (!/\r\nx-cache: HIT/i.test(head)) throw new Error(`${framework}: the second cached request was not a hit:\n${head}`);
    const ceilingHead = await probe(ceiling);
    for (const l of [ceiling, cached]) await batch(l, requests);
    const costs = { ceiling: [] as number[], cached: [] as number[] };
    for (let i = 0; i < batches; i++) {
      const order = i % 2 === 0 ? (['ceiling', 'cached'] as const) : (['cached', 'ceiling'] as const);
      for (const v of order) if (only === undefined || only === v) costs[v].push(((await batch(v === 'ceiling' ? ceiling : cached, requests)) / requests) * 1000);
    }
    const stats = cache.stats();
    if (stats.misses !== 1) throw new Error(`${framework}: expected one miss, got ${stats.misses}`);
    const a = costs.ceiling.length > 0 ? median(costs.ceiling) : NaN;
    const b = costs.cached.length > 0 ? median(costs.cached) : NaN;
    const names = (h: string): string => h.split('\r\n').slice(1).map((l) => l.slice(0, l.indexOf(':')).toLowerCase()).join(',');
    console.log(`${framework.padEnd(8)} ceiling ${a.toFixed(0).padStart(6)} ns  cached ${b.toFixed(0).padStart(6)} ns  cached - ceiling ${(b - a).toFixed(0).padStart(6)} ns`);
    if (process.env.BENCH_COST_HEADERS) console.log(`  ceiling headers: ${names(ceilingHead)}\n  cached headers:  ${names(head)}`);
    await cache.close();
  }
}

await main();
