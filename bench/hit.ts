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
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import { chooseTool, describeSetup, fmt, get, intEnv, listEnv, Loader, loadAverage, median, runRounds, serveTarget, table, Target, withTargets } from './harness.js';

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

function readConfig(): Config {
  const tool = chooseTool();
  const targets = listEnv<TargetId>('BENCH_TARGETS', 'a,h,b,c,d,e', Object.keys(TARGETS));
  return {
    duration: intEnv('BENCH_DURATION', 10, 1),
    warmup: intEnv('BENCH_WARMUP', 2, 0),
    connections: intEnv('BENCH_CONNECTIONS', 50, 1),
    rounds: intEnv('BENCH_ROUNDS', 2, 1),
    threads: intEnv('BENCH_THREADS', 1, 1),
    tool,
    targets,
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
  serveTarget(http.createServer(handler), cache === undefined ? undefined : () => cache.stats());
}

// ---------------------------------------------------------------------------------------------
// Orchestrator
// ---------------------------------------------------------------------------------------------

/** Fills the cache (first request) and checks that a second request is a hit with the whole body. */
async function warmCache(target: Target<TargetId>, bodyBytes: number): Promise<void> {
  const port = await target.port;
  await get(port);
  const r = await get(port);
  if (r.status !== 200 || r.length !== bodyBytes) throw new Error(`${target.id}: expected 200 with ${bodyBytes} bytes, got ${r.status} with ${r.length}`);
  if (CACHED.has(target.id) && r.headers['x-cache'] !== 'HIT') {
    throw new Error(`${target.id}: second request was not a hit (x-cache: ${String(r.headers['x-cache'])})`);
  }
}

async function main(): Promise<void> {
  const config = readConfig();
  for (const line of await describeSetup('stratacache hit-path benchmark', config)) console.log(line);
  console.log(
    `${config.connections} keep-alive connections, pipelining 1, body ${config.bodyBytes} B, ` +
      `${config.warmup} s warm-up + ${config.duration} s measured per target, ${config.rounds} round(s), alternating order`,
  );
  console.log('');

  const loader = new Loader(config);
  const targets = config.targets.map((id) => new Target(id, SELF, ['server', id, String(config.bodyBytes)], serverFlags));
  const { results, problems } = await withTargets(targets, loader, async () => {
    for (const t of targets) await warmCache(t, config.bodyBytes);
    return runRounds(targets, loader, config, (t) => `${t.id} ${TARGETS[t.id as TargetId].padEnd(29)}`);
  });

  const summary = new Map<TargetId, { rps: number; p50: number; p99: number; cpu: number; bytes: number; min: number; max: number }>();
  for (const [id, ms] of results) {
    const rps = ms.map((m) => m.rps);
    summary.set(id as TargetId, {
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
  console.log(`load avg at end: ${loadAverage()}`);
  if (problems.length > 0) {
    console.log('');
    for (const p of problems) console.log(`WARNING: ${p}`);
    process.exitCode = 1;
  }
}

const mode = process.argv[2];
if (mode === 'server') {
  await runServer(process.argv[3] as TargetId, Number(process.argv[4]));
} else {
  await main();
}
