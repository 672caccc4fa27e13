/**
 * In-process companion of `express-gap.ts`: the same targets behind a real `http.Server`, fed by
 * in-memory sockets (no kernel, no load generator), each target in a fresh process, reporting
 * process CPU ns per request. Unlike `hit-cost.ts` (all handlers in one process, sharing V8's
 * inline caches: an Express render there slows every handler alike), each target here has a
 * process of its own, as it would in production, so what one target's misses do to V8's view of
 * Node's http code shows in that target's hits only.
 *
 * Run: `npx tsx bench/express-gap-cost.ts` (alternates fresh processes of each target, medians).
 * One target alone, e.g. under valgrind for instruction counts that no other process moves:
 *   `npx tsx bench/express-gap-cost.ts e 2000 1` (target, requests per batch, measured batches).
 * Instructions per request = the difference of two such runs with 1 and 7 batches, over 12,000.
 *
 * Targets (see express-gap.ts): b `cache.wrap(handler)`; s the same, its handler changing the
 * prototypes of `req`/`res` as Express does; o `cache.wrap((req, res) => expressApp(req, res))`
 * (the app hidden behind an arrow: the control for a change that treats Express apps specially); e `cache.wrap(expressApp)`.
 * Each process first renders 100 URLs (misses), then serves hits for them: 50 keep-alive
 * connections, one request in flight each.
 *
 * Environment variables: BENCH_COST_ROUNDS (processes per target, default 5), BENCH_COST_REQUESTS
 * (requests per batch, default 20000), BENCH_COST_BATCHES (measured batches, default 5).
 */
import { execFileSync } from 'node:child_process';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import { DiscardSocket } from './discard.js';
import { intEnv, median } from './harness.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => unknown;
type TargetId = 'b' | 's' | 'o' | 'e';
const TARGETS: Record<TargetId, string> = {
  b: 'cache.wrap(handler)',
  s: 'cache.wrap(handler), Express prototypes',
  o: 'cache.wrap((q, s) => expressApp(q, s))',
  e: 'cache.wrap(expressApp)',
};
const SELF = fileURLToPath(import.meta.url);
const PATHS = 100;
const CONNECTIONS = 50;

/** A connection the server reads the requests pushed into and whose writes are discarded. */
class MemorySocket extends DiscardSocket {
  setNoDelay(): this {
    return this;
  }
  setKeepAlive(): this {
    return this;
  }
}

async function handlerFor(id: TargetId, body: Buffer): Promise<Handler> {
  const { createCache } = await import('../src/index.js');
  const cache = createCache();
  const origin: Handler = (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'max-age=3600', 'content-length': body.length });
    res.end(body);
  };
  if (id === 'b') return cache.wrap(origin);
  if (id === 's') {
    const reqProto = Object.create(http.IncomingMessage.prototype) as object;
    const resProto = Object.create(http.ServerResponse.prototype) as object;
    return cache.wrap((req, res) => {
      Object.setPrototypeOf(req, reqProto);
      Object.setPrototypeOf(res, resProto);
      origin(req, res);
    });
  }
  const { default: express } = await import('express');
  const app = express();
  app.set('etag', false);
  app.get('/p/:n', (_req, res) => {
    res.set('cache-control', 'max-age=3600').type('text/plain').send(body);
  });
  return id === 'e' ? cache.wrap(app) : cache.wrap((req, res) => app(req, res));
}

/** One target in this process: prints CPU ns per request (median of batches). */
async function runTarget(id: TargetId, perBatch: number, batches: number): Promise<void> {
  const handler = await handlerFor(id, Buffer.alloc(20 * 1024, 'stratacache express-gap benchmark body. '));
  const requests = Array.from({ length: PATHS }, (_, i) => Buffer.from(`GET /p/${i} HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: wrk\r\n\r\n`));
  const server = http.createServer(handler);
  let next = 0;
  let left = 0;
  let done: () => void = () => undefined;
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket as unknown as MemorySocket;
    res.on('finish', () => {
      left--;
      if (left > 0) setImmediate(() => socket.push(requests[next++ % PATHS]));
      else if (left === 0) setImmediate(done);
    });
  });
  const sockets = Array.from({ length: CONNECTIONS }, () => new MemorySocket());
  for (const socket of sockets) server.emit('connection', socket);
  const batch = (count: number): Promise<number> =>
    new Promise((resolve) => {
      const start = process.cpuUsage();
      left = count;
      done = () => {
        const used = process.cpuUsage(start);
        resolve(((used.user + used.system) / count) * 1000);
      };
      for (const socket of sockets) socket.push(requests[next++ % PATHS]);
    });
  await batch(2 * PATHS);
  await batch(perBatch);
  const costs: number[] = [];
  for (let i = 0; i < batches; i++) costs.push(await batch(perBatch));
  console.log(JSON.stringify({ id, ns: median(costs) }));
  process.exit(0);
}

function main(): void {
  const rounds = intEnv('BENCH_COST_ROUNDS', 5, 1);
  const perBatch = intEnv('BENCH_COST_REQUESTS', 20_000, 1);
  const batches = intEnv('BENCH_COST_BATCHES', 5, 1);
  const ids = Object.keys(TARGETS) as TargetId[];
  const costs = new Map<TargetId, number[]>(ids.map((id) => [id, []]));
  console.log(`express-gap in process: ${rounds} fresh process(es) per target, ${batches} batch(es) of ${perBatch} requests each, ${PATHS} URLs, ${CONNECTIONS} connections; node ${process.version}`);
  for (let round = 0; round < rounds; round++) {
    for (const id of round % 2 === 0 ? ids : [...ids].reverse()) {
      const out = execFileSync(process.execPath, [...process.execArgv, SELF, id, String(perBatch), String(batches)], { encoding: 'utf8' });
      const { ns } = JSON.parse(out.trim().split('\n').pop()!) as { ns: number };
      costs.get(id)!.push(ns);
      console.log(`round ${round + 1}  ${id} ${TARGETS[id].padEnd(40)} ${Math.round(ns).toLocaleString('en-US').padStart(7)} ns/req`);
    }
  }
  const b = median(costs.get('b')!);
  console.log('');
  for (const id of ids) {
    const m = median(costs.get(id)!);
    console.log(`${id} ${TARGETS[id].padEnd(40)} median ${Math.round(m).toLocaleString('en-US').padStart(7)} ns/req  ${(m / b).toFixed(2)} of b`);
  }
}

const [target, perBatch, batches] = process.argv.slice(2);
if (target !== undefined && target in TARGETS) await runTarget(target as TargetId, Number(perBatch ?? 20_000), Number(batches ?? 5));
else main();
