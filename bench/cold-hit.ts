/**
 * What a hit on a packed (cold) entry costs beside a hit on a hot one, in process.
 *
 * Run: `npx tsx bench/cold-hit.ts`.
 *
 * The memory tier keeps small entries packed, one string each, and unpacks an entry when it is
 * read; the `HOT_ENTRIES` read last stay unpacked. This script stores N small pages (100-byte
 * JSON bodies, as bench/memory.ts) through `cache.wrap` and then drives hits the way
 * bench/hit-cost.ts does (real IncomingMessage/ServerResponse over a discarding socket), in
 * alternating batches: `hot` cycles over 100 URLs (every hit finds its entry unpacked), `cold`
 * cycles over all N (N far above HOT_ENTRIES: every hit unpacks one entry and packs another
 * again), and `plain` is a Node handler writing a prebuilt body. It reports process CPU time per
 * request, median of the batches, and cold − hot: what a hit on a page read long ago costs
 * beyond a hot one (its key built anew, memory out of the CPU's caches, and the unpacking; run
 * it on a checkout before the packed tier, with HOT_ENTRIES a constant, to see the unpacking's share).
 *
 * Environment variables (all optional):
 *   BENCH_COLD_PAGES     pages stored (default 100000)
 *   BENCH_COST_REQUESTS  requests per batch (default 20000)
 *   BENCH_COST_BATCHES   batches per target (default 9)
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createCache } from '../src/index.js';
import { HOT_ENTRIES } from '../src/stores/memory.js';
import { cpuBatch, exchange } from './discard.js';
import { intEnv, median } from './harness.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => unknown;

async function main(): Promise<void> {
  const pages = intEnv('BENCH_COLD_PAGES', 100_000, 1);
  const requests = intEnv('BENCH_COST_REQUESTS', 20_000, 1);
  const batches = intEnv('BENCH_COST_BATCHES', 9, 1);
  if (pages <= 4 * HOT_ENTRIES) throw new RangeError(`BENCH_COLD_PAGES must be well above HOT_ENTRIES (${HOT_ENTRIES}), got ${pages}`);
  const filler = 'stratacache memory benchmark page body. '.repeat(4);
  const cache = createCache({ maxSize: 1 << 30 });
  let renders = 0;
  const cached: Handler = cache.wrap((req, res) => {
    renders++;
    const body = Buffer.from(`${req.url} ${filler}`.slice(0, 100));
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=3600', 'content-length': body.length });
    res.end(body);
  });
  const prebuilt = Buffer.from(`/page/0 ${filler}`.slice(0, 100));
  const plain: Handler = (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': prebuilt.length });
    res.end(prebuilt);
  };
  for (let i = 0; i < pages; i += 256) {
    const done: Array<Promise<unknown>> = [];
    for (let j = i; j < Math.min(pages, i + 256); j++) {
      const { req, res } = exchange();
      req.url = `/page/${j}`;
      done.push(new Promise((resolve) => res.once('finish', resolve)));
      cached(req, res);
    }
    await Promise.all(done);
  }
  const hotUrl = (i: number): string => `/page/${i % 100}`;
  let next = 0;
  const coldUrl = (): string => `/page/${(next = (next + 7919) % pages)}`;
  const targets: Array<[string, Handler, (i: number) => string]> = [
    ['plain', plain, hotUrl],
    ['hot', cached, hotUrl],
    ['cold', cached, coldUrl],
  ];
  for (const [, handler, urlOf] of targets) await cpuBatch(handler, requests, urlOf);
  const hitsBefore = cache.stats().hits;
  const times = new Map<string, number[]>(targets.map(([name]) => [name, []]));
  for (let b = 0; b < batches; b++) {
    for (let t = 0; t < targets.length; t++) {
      const [name, handler, urlOf] = targets[(b + t) % targets.length]!;
      times.get(name)!.push(((await cpuBatch(handler, requests, urlOf)) * 1000) / requests);
    }
  }
  const hits = cache.stats().hits - hitsBefore;
  if (renders !== pages || hits !== 2 * batches * requests) throw new Error(`expected only hits: renders=${renders} (pages ${pages}), hits=${hits}`);
  const ns = (name: string): number => median(times.get(name)!);
  console.log(`stratacache cold vs hot hits (node ${process.version}; ${pages.toLocaleString('en-US')} pages of 100 B, HOT_ENTRIES ${HOT_ENTRIES}; CPU ns per request, median of ${batches} batches of ${requests})\n`);
  for (const name of ['plain', 'hot', 'cold']) console.log(`  ${name.padEnd(6)} ${Math.round(ns(name)).toLocaleString('en-US').padStart(7)} ns/req`);
  console.log(`\n  hot − plain  ${Math.round(ns('hot') - ns('plain'))} ns: the cache's work on a hit whose entry is unpacked`);
  console.log(`  cold − hot   ${Math.round(ns('cold') - ns('hot'))} ns: a hit on a page read long ago (key built anew, memory out of the CPU's caches, the entry unpacked)`);
  await cache.close();
}

await main();
