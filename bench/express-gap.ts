/**
 * The Express hit gap (issue 21): `http.createServer(cache.wrap(expressApp))` beside
 * `cache.wrap(handler)` and a plain Node server, all answering the same 20 KB pages for 100 hot
 * URLs, in one run.
 *
 * Run: `npx tsx bench/express-gap.ts` (alone on the machine: other work moves req/s a lot).
 *
 * Targets, each its own child process on 127.0.0.1, fresh processes every round:
 *   a   plain `http.createServer`: writeHead + end(buf), the headers Express would send
 *   b   `http.createServer(cache.wrap(handler))`, the handler writing those headers with
 *       `Cache-Control: max-age=3600`
 *   x   `http.createServer(cache.wrap(handler))`, the handler also writing `X-Powered-By: Express`
 *       (b plus the one stored header Express adds: what the header itself costs)
 *   s   `cache.wrap(handler)` whose handler first does what Express does to every request it
 *       renders, `Object.setPrototypeOf(req|res, ...)`, without Express (the mechanism alone)
 *   o   `cache.wrap((req, res) => expressApp(req, res))`: the app hidden behind an arrow, so
 *       a cache that treated Express apps specially could not tell (the control for such a change)
 *   e   `http.createServer(cache.wrap(expressApp))`, an Express 5 app (`etag` off) sending the same
 *       body from `app.get('/p/:n')` with `res.set('cache-control', ...).type('text/plain')`
 * Every target is warmed on all the URLs; around each measured run the cached servers' counters
 * must show only hits. The load cycles through `/p/0` to `/p/<BENCH_PATHS - 1>` (wrk `request`
 * function). The table gives the median over rounds of req/s and server CPU µs per request, the
 * ratio of each to the plain server (a), and e/b both as a ratio of medians and `paired` (the
 * median of the per-round ratios: each round measures the targets back to back).
 *
 * Environment variables (all optional; see also harness.ts: BENCH_PIN, BENCH_TOOL):
 *   BENCH_DURATION     seconds per measured run                              (default 5)
 *   BENCH_WARMUP       seconds of discarded load before each measured run    (default 1)
 *   BENCH_CONNECTIONS  keep-alive connections                                (default 50)
 *   BENCH_ROUNDS       rounds, each with fresh server processes             (default 4)
 *   BENCH_THREADS      wrk threads (ignored by autocannon)                   (default 1)
 *   BENCH_PATHS        distinct URLs the load cycles through                 (default 100)
 *   BENCH_TARGETS      comma-separated subset of a,b,x,s,o,e                 (default a,b,o,e)
 *   BENCH_BODY_BYTES   body size in bytes                                    (default 20480)
 *   BENCH_SERVER_FLAGS extra node flags for the servers, space-separated, e.g.
 *                      '--cpu-prof --cpu-prof-dir=/tmp/prof'                 (default none)
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import { chooseTool, describeSetup, fmt, get, intEnv, listEnv, Loader, loadAverage, median, pathList, runRounds, serveTarget, table, Target, withTargets, type LoadConfig, type Measurement } from './harness.js';

const SELF = fileURLToPath(import.meta.url);
const CACHE_CONTROL = 'max-age=3600';
const serverFlags = (process.env.BENCH_SERVER_FLAGS ?? '').split(' ').filter((f) => f !== '');

type TargetId = 'a' | 'b' | 'x' | 's' | 'o' | 'e';
const TARGETS: Record<TargetId, string> = {
  a: 'plain node http',
  b: 'cache.wrap(handler)',
  x: 'cache.wrap(handler) + x-powered-by',
  s: 'cache.wrap(handler), Express prototypes',
  o: 'cache.wrap((q, s) => expressApp(q, s))',
  e: 'cache.wrap(expressApp)',
};
const CACHED: ReadonlySet<TargetId> = new Set<TargetId>(['b', 'x', 's', 'o', 'e']);

interface Config extends LoadConfig {
  duration: number;
  warmup: number;
  rounds: number;
  paths: number;
  targets: TargetId[];
  bodyBytes: number;
}

function readConfig(): Config {
  const targets = listEnv<TargetId>('BENCH_TARGETS', 'a,b,o,e', Object.keys(TARGETS));
  return {
    duration: intEnv('BENCH_DURATION', 5, 1),
    warmup: intEnv('BENCH_WARMUP', 1, 0),
    connections: intEnv('BENCH_CONNECTIONS', 50, 1),
    rounds: intEnv('BENCH_ROUNDS', 4, 1),
    threads: intEnv('BENCH_THREADS', 1, 1),
    tool: chooseTool(),
    paths: intEnv('BENCH_PATHS', 100, 1),
    targets,
    bodyBytes: intEnv('BENCH_BODY_BYTES', 20 * 1024, 1),
  };
}

// ---------------------------------------------------------------------------------------------
// Server child process
// ---------------------------------------------------------------------------------------------

async function runServer(id: TargetId, bodyBytes: number): Promise<void> {
  const body = Buffer.alloc(bodyBytes, 'stratacache express-gap benchmark body. ');
  const { createCache } = await import('../src/index.js');
  const cache = CACHED.has(id) ? createCache() : undefined;
  // What Express sends for `.type('text/plain').send(buf)` with etag off, but X-Powered-By.
  const plain = (_req: IncomingMessage, res: ServerResponse): void => {
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': body.length });
    res.end(body);
  };
  const origin = (_req: IncomingMessage, res: ServerResponse): void => {
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': CACHE_CONTROL, 'content-length': body.length });
    res.end(body);
  };
  const poweredOrigin = (_req: IncomingMessage, res: ServerResponse): void => {
    res.writeHead(200, { 'x-powered-by': 'Express', 'content-type': 'text/plain; charset=utf-8', 'cache-control': CACHE_CONTROL, 'content-length': body.length });
    res.end(body);
  };
  let handler: (req: IncomingMessage, res: ServerResponse) => unknown;
  switch (id) {
    case 'a':
      handler = plain;
      break;
    case 'b':
      handler = cache!.wrap(origin);
      break;
    case 'x':
      handler = cache!.wrap(poweredOrigin);
      break;
    case 's': {
      // What Express's app.handle does to every request it renders, without Express.
      const reqProto = Object.create(http.IncomingMessage.prototype) as object;
      const resProto = Object.create(http.ServerResponse.prototype) as object;
      handler = cache!.wrap((req, res) => {
        Object.setPrototypeOf(req, reqProto);
        Object.setPrototypeOf(res, resProto);
        origin(req, res);
      });
      break;
    }
    case 'o':
    case 'e': {
      const { default: express } = await import('express');
      const app = express();
      app.set('etag', false);
      app.get('/p/:n', (_req, res) => {
        res.set('cache-control', CACHE_CONTROL).type('text/plain').send(body);
      });
      // (o) hides the app behind an arrow: it cannot be told from any other handler, the control
      // for a change that treats Express apps specially (today both behave alike).
      handler = id === 'e' ? cache!.wrap(app) : cache!.wrap((req, res) => app(req, res));
      break;
    }
  }
  serveTarget(http.createServer(handler), cache === undefined ? undefined : () => cache.stats());
}

// ---------------------------------------------------------------------------------------------
// Orchestrator
// ---------------------------------------------------------------------------------------------

/** Requests every path twice on a fresh connection each: the second must be the whole body (and a hit). */
async function warm(target: Target<TargetId>, config: Config): Promise<void> {
  const port = await target.port;
  for (const p of pathList(config.paths)) {
    await get(port, p);
    const r = await get(port, p);
    if (r.status !== 200 || r.length !== config.bodyBytes) throw new Error(`${target.id} ${p}: expected 200 with ${config.bodyBytes} bytes, got ${r.status} with ${r.length}`);
    if (CACHED.has(target.id) && r.headers['x-cache'] !== 'HIT') throw new Error(`${target.id} ${p}: second request was not a hit (x-cache: ${String(r.headers['x-cache'])})`);
  }
}

async function main(): Promise<void> {
  const config = readConfig();
  for (const line of await describeSetup('stratacache express-gap benchmark: cache.wrap(expressApp) beside cache.wrap(handler) and a plain server', config)) console.log(line);
  console.log(`${config.connections} keep-alive connections, pipelining 1, ${config.paths} URLs, body ${config.bodyBytes} B, ${config.warmup} s warm-up + ${config.duration} s measured per target, ${config.rounds} round(s), alternating order, fresh server processes each round`);
  console.log('');

  const results = new Map<string, Measurement[]>();
  const problems: string[] = [];
  for (let round = 0; round < config.rounds; round++) {
    const loader = new Loader(config);
    const targets = config.targets.map((id) => new Target(id, SELF, ['server', id, String(config.bodyBytes)], serverFlags));
    const done = await withTargets(targets, loader, async () => {
      for (const t of targets) await warm(t, config);
      return runRounds(targets, loader, { ...config, rounds: 1, firstRound: round }, (t) => `${t.id} ${TARGETS[t.id as TargetId].padEnd(36)}`);
    });
    for (const [id, list] of done.results) results.set(id, [...(results.get(id) ?? []), ...list]);
    problems.push(...done.problems);
  }

  const of = (id: TargetId): Measurement[] => results.get(id) ?? [];
  const rps = (id: TargetId): number => median(of(id).map((m) => m.rps));
  const cpu = (id: TargetId): number => median(of(id).map((m) => m.cpuPerRequest));
  const ratio = (v: number, base: number): string => (Number.isFinite(base) && base > 0 ? v / base : NaN).toFixed(2);
  const has = (id: TargetId): boolean => config.targets.includes(id);
  const rows: string[][] = [['target', 'req/s', 'vs a', 'req/s range', 'cpu µs/req', 'vs a']];
  for (const id of config.targets) {
    const list = of(id).map((m) => m.rps);
    rows.push([`${id} ${TARGETS[id]}`, fmt(rps(id)), has('a') ? ratio(rps(id), rps('a')) : '-', `${fmt(Math.min(...list))}-${fmt(Math.max(...list))}`, fmt(cpu(id), 1), has('a') ? ratio(cpu(id), cpu('a')) : '-']);
  }
  console.log('');
  console.log(`median of ${config.rounds} round(s), one fresh process per target per round; "vs a": ratio to the plain server (req/s: higher is better; cpu: lower is better)`);
  console.log(table(rows));
  // Each against wrap(handler): the ratio of medians, and the median of the per-round ratios.
  for (const id of ['e', 'o'] as const) {
    if (!has('b') || !has(id)) continue;
    const paired = (value: (m: Measurement) => number): string => median(of(id).map((m, i) => value(m) / value(of('b')[i]!))).toFixed(2);
    console.log(`${id} / b: req/s ${ratio(rps(id), rps('b'))} (paired ${paired((m) => m.rps)}), cpu µs/req ${ratio(cpu(id), cpu('b'))} (paired ${paired((m) => m.cpuPerRequest)})`);
  }
  console.log(`load avg at end: ${loadAverage()}`);
  if (problems.length > 0) {
    console.log('');
    for (const p of problems) console.log(`WARNING: ${p}`);
    process.exitCode = 1;
  }
}

if (process.argv[2] === 'server') await runServer(process.argv[3] as TargetId, Number(process.argv[4]));
else if (process.argv[1] === SELF) await main();
