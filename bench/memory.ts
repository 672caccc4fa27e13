/**
 * What a cached page costs in memory: the heap entries really take beside what `stats().bytes`
 * counts for them (what `maxSize` bounds).
 *
 * Run: `npm run bench:memory` (= `npx tsx bench/memory.ts`).
 *
 * Each scenario runs in a fresh child process (`node --expose-gc --import tsx`): a cache with a
 * `maxSize` large enough to keep every page, then N distinct pages (`GET /page/<i>`, a body of
 * the given size, `Content-Type` and `Cache-Control: max-age=3600`) requested once each through
 * `cache.wrap` with real IncomingMessage/ServerResponse objects over a discarding socket (as
 * `hit-cost.ts` does), so every one is a miss that stores an entry. Memory is read after forced
 * garbage collections, before and after: the V8 heap (`heapUsed`) and the bytes of ArrayBuffers
 * outside it (`arrayBuffers`: the bodies), their sum per entry, and `stats().bytes` per entry.
 * Then every page is requested once more (a hit each) and memory read again: what serving adds
 * to an entry that stays in memory. The `bounded` row stores more pages than `maxSize` holds and
 * compares the memory kept with `maxSize`.
 *
 * Environment variables (all optional):
 *   BENCH_MEMORY_SCENARIOS  comma-separated `count:bodyBytes[:maxSizeMiB]` (default
 *                           `10000:100,100000:100,1000000:100,5000:20480,1000000:100:128`; a third
 *                           field makes it a bounded run with that maxSize)
 *   BENCH_MEMORY_HITS       `0` skips the second pass of hits (default: run it up to 200,000 pages)
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { setImmediate as nextLoop } from 'node:timers/promises';
import { createCache } from '../src/index.js';
import { exchange } from './discard.js';

/** What one scenario's child reports. */
export interface MemoryResult {
  count: number;
  bodyBytes: number;
  /** The configured maxSize in bytes. */
  maxSize: number;
  bounded: boolean;
  entries: number;
  counted: number;
  heap: number;
  buffers: number;
  /** Heap and buffer growth after one hit on each kept entry. */
  heapAfterHits: number | undefined;
  buffersAfterHits: number | undefined;
  /** `stats().bytes` growth after the hits (the entries a hit unpacked are charged as objects). */
  countedAfterHits: number | undefined;
}

const SELF = fileURLToPath(import.meta.url);
const CHILD = 'BENCH_MEMORY_CHILD';
/** Pages requested before measuring, outside the measured range (their entries stay). */
const WARM = 500;

function gc(): void {
  const run = (globalThis as { gc?: () => void }).gc;
  if (run === undefined) throw new Error('run with --expose-gc');
  for (let i = 0; i < 4; i++) run();
}

function memory(): { heap: number; buffers: number } {
  gc();
  const m = process.memoryUsage();
  return { heap: m.heapUsed, buffers: m.arrayBuffers };
}

/** Requests `/page/<from..to-1>` through `handler`, a few hundred at a time. */
async function drive(handler: ReturnType<ReturnType<typeof createCache>['wrap']>, from: number, to: number): Promise<void> {
  const WINDOW = 256;
  for (let start = from; start < to; start += WINDOW) {
    const done: Array<Promise<unknown>> = [];
    for (let i = start; i < Math.min(to, start + WINDOW); i++) {
      const { req, res } = exchange();
      req.url = `/page/${i}`;
      done.push(new Promise((resolve) => res.once('finish', resolve)));
      handler(req, res);
    }
    await Promise.all(done);
    await nextLoop();
  }
}

/** One scenario, in this (child) process. */
async function child(count: number, bodyBytes: number, maxSizeMiB: number | undefined): Promise<MemoryResult> {
  const bounded = maxSizeMiB !== undefined;
  const maxSize = bounded ? maxSizeMiB * 1024 * 1024 : Math.max(64 * 1024 * 1024, (count + WARM) * (bodyBytes + 4096));
  const cache = createCache({ maxSize });
  const filler = 'stratacache memory benchmark page body. ';
  const handler = cache.wrap((req, res) => {
    // A distinct body per page, made per render as an app would.
    const body = Buffer.from(`${req.url} ${filler.repeat(Math.ceil(bodyBytes / filler.length))}`.slice(0, bodyBytes));
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=3600', 'content-length': body.length });
    res.end(body);
  });
  // Warm the code paths (and the pools they allocate) on pages outside the measured range.
  await drive(handler, count, count + WARM);
  const before = memory();
  const entriesBefore = cache.stats().entries;
  const bytesBefore = cache.stats().bytes;
  await drive(handler, 0, count);
  const after = memory();
  const stats = cache.stats();
  const entries = stats.entries - entriesBefore;
  const result: MemoryResult = {
    count,
    bodyBytes,
    maxSize,
    bounded,
    entries,
    counted: stats.bytes - bytesBefore,
    heap: after.heap - before.heap,
    buffers: after.buffers - before.buffers,
    heapAfterHits: undefined,
    buffersAfterHits: undefined,
    countedAfterHits: undefined,
  };
  if (process.env.BENCH_MEMORY_HITS !== '0' && !bounded && count <= 200_000) {
    const hitsBefore = cache.stats().hits;
    await drive(handler, 0, count);
    if (cache.stats().hits - hitsBefore !== count) throw new Error(`expected ${count} hits, got ${cache.stats().hits - hitsBefore}`);
    const served = memory();
    result.heapAfterHits = served.heap - before.heap;
    result.buffersAfterHits = served.buffers - before.buffers;
    result.countedAfterHits = cache.stats().bytes - bytesBefore;
  }
  await cache.close();
  return result;
}

function parseScenarios(raw: string): Array<[number, number, number | undefined]> {
  return raw.split(',').map((s) => {
    const [count, body, max] = s.split(':').map(Number);
    if (!Number.isInteger(count) || !Number.isInteger(body) || count! < 1 || body! < 1 || (max !== undefined && !(max > 0))) {
      throw new RangeError(`BENCH_MEMORY_SCENARIOS: bad scenario ${JSON.stringify(s)} (count:bodyBytes[:maxSizeMiB])`);
    }
    return [count!, body!, max];
  });
}

const per = (bytes: number, n: number): string => (n === 0 ? '-' : Math.round(bytes / n).toLocaleString('en-US'));
const size = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

async function main(): Promise<void> {
  const spec = process.env[CHILD];
  if (spec !== undefined) {
    const [count, body, max] = parseScenarios(spec)[0]!;
    process.stdout.write(`${JSON.stringify(await child(count, body, max))}\n`);
    return;
  }
  const scenarios = parseScenarios(process.env.BENCH_MEMORY_SCENARIOS ?? '10000:100,100000:100,1000000:100,5000:20480,1000000:100:128');
  const rows: MemoryResult[] = [];
  for (const [count, body, max] of scenarios) {
    const started = Date.now();
    const run = spawnSync(process.execPath, ['--expose-gc', '--max-old-space-size=8192', '--import', 'tsx', SELF], {
      env: { ...process.env, [CHILD]: `${count}:${body}${max === undefined ? '' : `:${max}`}` },
      encoding: 'utf8',
      maxBuffer: 1 << 20,
    });
    if (run.status !== 0) throw new Error(`scenario ${count}:${body} failed (${String(run.status)}): ${run.stderr}`);
    const result = JSON.parse(run.stdout.trim().split('\n').pop()!) as MemoryResult;
    rows.push(result);
    console.error(`${count} x ${body} B${max === undefined ? '' : ` in ${max} MiB`}: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }
  console.log(`stratacache memory per entry (node ${process.version}; heap = V8 heapUsed, buffers = ArrayBuffers outside it, after forced gc)\n`);
  console.log('| pages | body | entries kept | heap / entry | buffers / entry | total / entry | counted / entry | total / counted | total / entry after a hit each | counted / entry after a hit each |');
  console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const r of rows) {
    if (r.bounded) continue;
    const total = r.heap + r.buffers;
    const hit = r.heapAfterHits === undefined ? '-' : per(r.heapAfterHits + r.buffersAfterHits!, r.entries);
    const hitCounted = r.countedAfterHits === undefined ? '-' : per(r.countedAfterHits, r.entries);
    console.log(
      `| ${r.count.toLocaleString('en-US')} | ${r.bodyBytes.toLocaleString('en-US')} B | ${r.entries.toLocaleString('en-US')} | ${per(r.heap, r.entries)} | ${per(r.buffers, r.entries)} | ${per(total, r.entries)} | ${per(r.counted, r.entries)} | ${(total / r.counted).toFixed(2)} | ${hit} | ${hitCounted} |`,
    );
  }
  const bounded = rows.filter((r) => r.bounded);
  if (bounded.length > 0) {
    console.log('\n| pages stored | body | maxSize | entries kept | counted | heap + buffers kept | kept / maxSize |');
    console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const r of bounded) {
      const total = r.heap + r.buffers;
      console.log(`| ${r.count.toLocaleString('en-US')} | ${r.bodyBytes.toLocaleString('en-US')} B | ${size(r.maxSize)} | ${r.entries.toLocaleString('en-US')} | ${size(r.counted)} | ${size(total)} | ${(total / r.maxSize).toFixed(2)} |`);
    }
  }
}

await main();
