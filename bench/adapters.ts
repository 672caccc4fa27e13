/**
 * Adapter benchmark (issue 13): the hit path of every adapter beside its framework serving the
 * same prebuilt buffer with no cache (the framework's own ceiling), in one run.
 *
 * Run: `npm run bench:adapters` (= `npx tsx bench/adapters.ts`).
 *
 * For each framework two targets, each its own child process on 127.0.0.1:
 *   ceiling  the framework answering a prebuilt body from its idiomatic route (Express with its
 *            per-response ETag turned off, so the ceiling is the framework's best)
 *   cached   the same app with the cache's adapter in front, warmed: every measured request is a hit
 * Frameworks: node (`http.createServer` / `cache.wrap`), express (`cache.middleware()`), connect
 * (`cache.middleware({ app })`), koa (`cache.koa()`), fastify (`cache.fastify()`), fetch
 * (`@hono/node-server` serving a WHATWG handler / `cache.fetch(handler)`), hono (a Hono app's
 * `app.fetch` / `cache.fetch(app.fetch)`).
 *
 * The table reports, per framework, the median over rounds of req/s and of server CPU µs per
 * request for both targets and the ratio cached/ceiling (target: req/s ratio >= 0.90), and
 * beside each ratio the median of the ratios taken round by round (a framework's two targets run
 * back to back in every round, so each pair shares the machine's load of the moment). Rounds
 * alternate the order of targets, and each round starts (and warms) fresh server processes. Around each run the cached server's counters must show only hits.
 *
 * Environment variables (all optional; see also harness.ts):
 *   BENCH_DURATION     seconds per measured run                              (default 5)
 *   BENCH_WARMUP       seconds of discarded load before each measured run    (default 1)
 *   BENCH_CONNECTIONS  keep-alive connections                                (default 50)
 *   BENCH_ROUNDS       rounds over all targets                               (default 3)
 *   BENCH_THREADS      wrk threads (ignored by autocannon)                   (default 1)
 *   BENCH_TOOL         'wrk' or 'autocannon'                      (default: wrk if found)
 *   BENCH_PIN          0: no CPU pinning; 1: require it (default: servers on the last CPU, the
 *                      load generator on the others, where taskset exists and there are 2+ CPUs)
 *   BENCH_FRAMEWORKS   comma-separated subset of the frameworks above        (default all)
 *   BENCH_BODY_BYTES   body size in bytes                                    (default 20480)
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import type { StrataCache } from '../src/index.js';
import { chooseTool, describeSetup, fmt, get, intEnv, listEnv, Loader, loadAverage, median, runRounds, serveTarget, table, Target, withTargets, type LoadConfig, type Measurement } from './harness.js';

const SELF = fileURLToPath(import.meta.url);
const CACHE_CONTROL = 'max-age=3600';
export const FRAMEWORKS = ['node', 'express', 'connect', 'koa', 'fastify', 'fetch', 'hono'] as const;
export type Framework = (typeof FRAMEWORKS)[number];
type Variant = 'ceiling' | 'cached';

/** What each framework's cached target is. */
const ADAPTER: Record<Framework, string> = {
  node: 'cache.wrap(handler)',
  express: 'app.use(cache.middleware())',
  connect: 'app.use(cache.middleware({ app }))',
  koa: 'app.use(cache.koa())',
  fastify: 'app.register(cache.fastify())',
  fetch: 'cache.fetch(handler) on @hono/node-server',
  hono: 'cache.fetch(app.fetch) on @hono/node-server',
};

interface Config extends LoadConfig {
  duration: number;
  warmup: number;
  rounds: number;
  frameworks: Framework[];
  bodyBytes: number;
}

function readConfig(): Config {
  const frameworks = listEnv<Framework>('BENCH_FRAMEWORKS', FRAMEWORKS.join(','), FRAMEWORKS, 'framework');
  return {
    duration: intEnv('BENCH_DURATION', 5, 1),
    warmup: intEnv('BENCH_WARMUP', 1, 0),
    connections: intEnv('BENCH_CONNECTIONS', 50, 1),
    rounds: intEnv('BENCH_ROUNDS', 3, 1),
    threads: intEnv('BENCH_THREADS', 1, 1),
    tool: chooseTool(),
    frameworks,
    bodyBytes: intEnv('BENCH_BODY_BYTES', 20 * 1024, 1),
  };
}

// ---------------------------------------------------------------------------------------------
// Server child process
// ---------------------------------------------------------------------------------------------

type Listener = (req: IncomingMessage, res: ServerResponse) => unknown;

/** The request listener of one target: the framework's app serving `body`, with `cache` in front when given. */
export async function listenerFor(framework: Framework, body: Buffer, cache: StrataCache | undefined): Promise<Listener> {
  const headers = { 'content-type': 'text/plain', 'cache-control': CACHE_CONTROL };
  // Node's idiom: one object literal to writeHead. (Spreading `headers` into it, as this file
  // once did, costs the plain server about 0.9 µs more per request in bench/adapter-cost.ts: a
  // ceiling lowered in the cache's favour.)
  const plain: Listener = (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': CACHE_CONTROL, 'content-length': body.length });
    res.end(body);
  };
  switch (framework) {
    case 'node': {
      const handler = plain;
      return cache === undefined ? handler : cache.wrap(handler);
    }
    case 'express': {
      const { default: express } = await import('express');
      const app = express();
      app.set('etag', false);
      if (cache !== undefined) app.use(cache.middleware());
      app.get('/', (_req, res) => void res.set(headers).send(body));
      return app;
    }
    case 'connect': {
      const { default: connect } = await import('connect');
      const app = connect();
      if (cache !== undefined) app.use(cache.middleware({ app }));
      app.use(plain);
      return app;
    }
    case 'koa': {
      const { default: Koa } = await import('koa');
      const app = new Koa();
      if (cache !== undefined) app.use(cache.koa());
      app.use(async (ctx) => {
        ctx.set(headers);
        ctx.body = body;
      });
      return app.callback();
    }
    case 'fastify': {
      const { default: Fastify } = await import('fastify');
      const app = Fastify();
      if (cache !== undefined) await app.register(cache.fastify());
      app.get('/', (_req, reply) => void reply.headers(headers).send(body));
      await app.ready();
      return app.routing;
    }
    case 'fetch': {
      const { getRequestListener } = await import('@hono/node-server');
      const handler = (): Response => new Response(body, { headers });
      return getRequestListener(cache === undefined ? handler : cache.fetch(handler));
    }
    case 'hono': {
      const { getRequestListener } = await import('@hono/node-server');
      const { Hono } = await import('hono');
      const app = new Hono();
      const bytes = new Uint8Array(body);
      app.get('/', (c) => c.body(bytes, 200, headers));
      return getRequestListener(cache === undefined ? app.fetch : cache.fetch(app.fetch));
    }
  }
}

async function runServer(framework: Framework, variant: Variant, bodyBytes: number): Promise<void> {
  const body = Buffer.alloc(bodyBytes, 'stratacache adapter benchmark body. ');
  const { createCache } = await import('../src/index.js');
  const cache = variant === 'cached' ? createCache() : undefined;
  serveTarget(http.createServer(await listenerFor(framework, body, cache)), cache === undefined ? undefined : () => cache.stats());
}

// ---------------------------------------------------------------------------------------------
// Orchestrator
// ---------------------------------------------------------------------------------------------

/** Checks a target answers the whole body, and (cached) that its second request is a hit. */
async function warm(target: Target, variant: Variant, bodyBytes: number): Promise<void> {
  const port = await target.port;
  await get(port);
  const r = await get(port);
  if (r.status !== 200 || r.length !== bodyBytes) throw new Error(`${target.id}: expected 200 with ${bodyBytes} bytes, got ${r.status} with ${r.length}`);
  if (variant === 'cached' && r.headers['x-cache'] !== 'HIT') throw new Error(`${target.id}: second request was not a hit (x-cache: ${String(r.headers['x-cache'])})`);
}

async function main(): Promise<void> {
  const config = readConfig();
  for (const line of await describeSetup('stratacache adapter benchmark: each adapter\'s hit path beside its framework serving a prebuilt buffer', config)) console.log(line);
  console.log(`${config.connections} keep-alive connections, pipelining 1, body ${config.bodyBytes} B, ${config.warmup} s warm-up + ${config.duration} s measured per target, ${config.rounds} round(s), alternating order, fresh server processes each round`);
  console.log('');

  // Fresh server processes for every round. On the shared machine one server process can stay
  // slow or fast for its whole life (one fetch ceiling ran at 40-42 µs/req for four rounds while
  // other processes of the same target ran at 19-23): with processes kept across rounds, every
  // round would draw from the same process, and the median would not be one over processes.
  const results = new Map<string, Measurement[]>();
  const problems: string[] = [];
  for (let round = 0; round < config.rounds; round++) {
    const loader = new Loader(config);
    const targets: Array<{ framework: Framework; variant: Variant; target: Target }> = [];
    for (const framework of config.frameworks) {
      for (const variant of ['ceiling', 'cached'] as const) targets.push({ framework, variant, target: new Target(`${framework} ${variant}`, SELF, ['server', framework, variant, String(config.bodyBytes)]) });
    }
    const done = await withTargets(
      targets.map((t) => t.target),
      loader,
      async () => {
        for (const t of targets) await warm(t.target, t.variant, config.bodyBytes);
        return runRounds(
          targets.map((t) => t.target),
          loader,
          { ...config, rounds: 1, firstRound: round },
          (t) => t.id.padEnd(16),
        );
      },
    );
    for (const [id, list] of done.results) results.set(id, [...(results.get(id) ?? []), ...list]);
    problems.push(...done.problems);
  }

  const rows: string[][] = [['framework', 'adapter', 'ceiling req/s', 'cached req/s', 'ratio', 'paired', 'ceiling µs/req', 'cached µs/req', 'cpu ratio', 'paired']];
  const below: string[] = [];
  for (const framework of config.frameworks) {
    const of = (variant: Variant) => results.get(`${framework} ${variant}`)!;
    const ceiling = { rps: median(of('ceiling').map((m) => m.rps)), cpu: median(of('ceiling').map((m) => m.cpuPerRequest)) };
    const cached = { rps: median(of('cached').map((m) => m.rps)), cpu: median(of('cached').map((m) => m.cpuPerRequest)) };
    const ratio = cached.rps / ceiling.rps;
    if (ratio < 0.9) below.push(framework);
    // Each round measures a framework's two targets back to back: the median of the per-round
    // ratios compares each run with its neighbour, not with a run taken under another load.
    const paired = (value: (m: Measurement) => number): string => median(of('cached').map((m, i) => value(m) / value(of('ceiling')[i]!))).toFixed(2);
    rows.push([framework, ADAPTER[framework], fmt(ceiling.rps), fmt(cached.rps), ratio.toFixed(2), paired((m) => m.rps), fmt(ceiling.cpu, 1), fmt(cached.cpu, 1), (cached.cpu / ceiling.cpu).toFixed(2), paired((m) => m.cpuPerRequest)]);
  }
  console.log('');
  console.log(`median of ${config.rounds} round(s); ratio = cached / ceiling req/s (target >= 0.90); cpu ratio = cached / ceiling server CPU per request (lower is better); paired = the median of the same ratio taken in each round (the two targets measured back to back)`);
  console.log(table(rows));
  console.log(`load avg at end: ${loadAverage()}`);
  if (below.length > 0) console.log(`below 0.90 of the ceiling this run: ${below.join(', ')}`);
  if (problems.length > 0) {
    console.log('');
    for (const p of problems) console.log(`WARNING: ${p}`);
    process.exitCode = 1;
  }
}

if (process.argv[2] === 'server') await runServer(process.argv[3] as Framework, process.argv[4] as Variant, Number(process.argv[5]));
else if (process.argv[1] === SELF) await main();
