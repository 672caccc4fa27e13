/**
 * In-process companion to bench/hit.ts: the CPU cost the cache adds to one hit, without sockets.
 *
 * Run: `npx tsx bench/hit-cost.ts`.
 *
 * bench/hit.ts measures whole servers over loopback, where most of a request's CPU time is the
 * kernel's (writev of the 20 KB body, loopback delivery) and other processes on a shared machine
 * move req/s by tens of percent. This script drives the same two handlers as targets (a) and (b)
 * of bench/hit.ts with real IncomingMessage/ServerResponse objects over a socket that discards
 * what it is given, so what is left is JavaScript: Node's request/response machinery (the same
 * for both) plus the hit path (key, lookup, serve). It reports process CPU time per request for
 * each, alternating them in batches, and the difference: the hit path's own cost in ns.
 *
 * A third handler (a2) writes exactly the header list a hit writes (read from a real hit:
 * Cache-Control, Age, the cache-status headers...) without any cache, which splits that
 * difference into what Node charges for the extra headers (a2 - a) and what the cache's own
 * logic costs (b - a2).
 *
 * Environment variables (all optional):
 *   BENCH_COST_REQUESTS  requests per batch                          (default 20000)
 *   BENCH_COST_BATCHES   batches per handler, rotating a, a2, b      (default 15)
 *   BENCH_BODY_BYTES     body size in bytes                          (default 20480)
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { setImmediate as nextLoop } from 'node:timers/promises';
import { createCache } from '../src/index.js';
import { cpuBatch, exchange } from './discard.js';
import { intEnv, median } from './harness.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => unknown;

async function main(): Promise<void> {
  const requests = intEnv('BENCH_COST_REQUESTS', 20_000, 1);
  const batches = intEnv('BENCH_COST_BATCHES', 15, 1);
  const body = Buffer.alloc(intEnv('BENCH_BODY_BYTES', 20 * 1024, 1), 'stratacache hit-path benchmark body. ');

  const plain: Handler = (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
    res.end(body);
  };
  let renders = 0;
  const cache = createCache();
  const cached: Handler = cache.wrap((_req, res) => {
    renders++;
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=3600', 'content-length': body.length });
    res.end(body);
  });

  // Fill the cache, and check that what follows is a hit that writes the whole body.
  const first = exchange();
  cached(first.req, first.res);
  await new Promise((resolve) => first.res.once('finish', resolve));
  const probe = exchange(true);
  cached(probe.req, probe.res);
  await nextLoop();
  if (renders !== 1 || cache.stats().hits !== 1 || probe.socket.bytes < body.length) {
    throw new Error(`warm-up failed: renders=${renders}, hits=${cache.stats().hits}, bytes=${probe.socket.bytes}`);
  }

  // a2: the header list the hit wrote, minus those Node adds itself, written without a cache.
  const headBlock = Buffer.concat(probe.socket.kept!).toString('latin1');
  const hitHeaders: string[] = [];
  for (const line of headBlock.slice(0, headBlock.indexOf('\r\n\r\n')).split('\r\n').slice(1)) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon);
    if (!['date', 'connection', 'keep-alive', 'transfer-encoding'].includes(name.toLowerCase())) hitHeaders.push(name, line.slice(colon + 1).trim());
  }
  const sameHeaders: Handler = (_req, res) => {
    res.writeHead(200, hitHeaders);
    res.end(body);
  };

  // e: cache.wrap(expressApp), the same route as bench/hit.ts's targets c-e. e2: cache.wrap of a
  // plain handler writing exactly the headers Express wrote (x-powered-by, etag, charset...), so
  // e - e2 is what a hit through an Express app costs beyond its stored headers.
  const { default: express } = await import('express');
  const app = express();
  app.get('/', (_req, res) => {
    res.set('cache-control', 'max-age=3600').type('text/plain').send(body);
  });
  const expressCache = createCache();
  const viaExpress: Handler = expressCache.wrap(app);
  const warm = exchange();
  viaExpress(warm.req, warm.res);
  await new Promise((resolve) => warm.res.once('finish', resolve));
  const expressProbe = exchange(true);
  viaExpress(expressProbe.req, expressProbe.res);
  await nextLoop();
  const expressBlock = Buffer.concat(expressProbe.socket.kept!).toString('latin1');
  const expressHeaders: string[] = [];
  for (const line of expressBlock.slice(0, expressBlock.indexOf('\r\n\r\n')).split('\r\n').slice(1)) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).toLowerCase();
    if (!['date', 'connection', 'keep-alive', 'transfer-encoding', 'age', 'x-cache', 'cache-status'].includes(name)) expressHeaders.push(name, line.slice(colon + 1).trim());
  }
  const likeExpressCache = createCache();
  const likeExpress: Handler = likeExpressCache.wrap((_req, res) => {
    res.writeHead(200, expressHeaders);
    res.end(body);
  });
  const warm2 = exchange();
  likeExpress(warm2.req, warm2.res);
  await new Promise((resolve) => warm2.res.once('finish', resolve));

  // JIT warm-up for each, then rotate the order batch by batch so drift hits all alike.
  const handlers: Array<['a' | 'a2' | 'b' | 'e' | 'e2', Handler]> = [
    ['a', plain],
    ['a2', sameHeaders],
    ['b', cached],
    ['e', viaExpress],
    ['e2', likeExpress],
  ];
  for (const [, handler] of handlers) await cpuBatch(handler, requests);
  const costs = { a: [] as number[], a2: [] as number[], b: [] as number[], e: [] as number[], e2: [] as number[] };
  for (let i = 0; i < batches; i++) {
    for (let j = 0; j < handlers.length; j++) {
      const [name, handler] = handlers[(i + j) % handlers.length]!;
      costs[name].push(((await cpuBatch(handler, requests)) / requests) * 1000);
    }
  }
  const stats = cache.stats();
  if (renders !== 1 || stats.misses !== 1) throw new Error(`expected only hits after warm-up, got ${renders} renders, ${stats.misses} misses`);

  const a = median(costs.a);
  const a2 = median(costs.a2);
  const b = median(costs.b);
  const line = (label: string, name: keyof typeof costs, v: number): string =>
    `${label.padEnd(44)} ${v.toFixed(0).padStart(6)} ns/req  (batches ${Math.min(...costs[name]).toFixed(0)}-${Math.max(...costs[name]).toFixed(0)})`;
  console.log('stratacache hit-path cost, in process (no sockets): process CPU time per request, median of batches');
  console.log(`node ${process.version}; ${batches} batches x ${requests} requests per handler, rotating order; body ${body.length} B`);
  console.log(`hit headers: ${hitHeaders.filter((_, i) => i % 2 === 0).join(', ')}`);
  console.log(line('a  plain handler (2 headers)', 'a', a));
  console.log(line(`a2 plain handler, the hit's ${hitHeaders.length / 2} headers`, 'a2', a2));
  console.log(line('b  cache.wrap(handler), hit', 'b', b));
  console.log(`hit path adds (b - a)                        ${(b - a).toFixed(0).padStart(6)} ns/req  (${((b / a - 1) * 100).toFixed(1)}% of the plain handler's JS)`);
  console.log(`  of which the extra headers (a2 - a)        ${(a2 - a).toFixed(0).padStart(6)} ns/req`);
  console.log(`  and the cache's own work (b - a2)          ${(b - a2).toFixed(0).padStart(6)} ns/req  (${stats.hits} hits, 1 render)`);
  const e = median(costs.e);
  const e2 = median(costs.e2);
  console.log(`express hit headers: ${expressHeaders.filter((_, i) => i % 2 === 0).join(', ')}`);
  console.log(line('e  cache.wrap(expressApp), hit', 'e', e));
  console.log(line("e2 cache.wrap(handler) with Express's headers", 'e2', e2));
  console.log(`wrap(expressApp) - wrap(handler) (e - b)     ${(e - b).toFixed(0).padStart(6)} ns/req`);
  console.log(`  of which Express's stored headers (e2 - b) ${(e2 - b).toFixed(0).padStart(6)} ns/req`);
  console.log(`  and the rest (e - e2)                      ${(e - e2).toFixed(0).padStart(6)} ns/req  (${expressCache.stats().hits} hits, ${expressCache.stats().misses} render)`);
  await Promise.all([cache.close(), expressCache.close(), likeExpressCache.close()]);
}

await main();
