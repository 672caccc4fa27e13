/**
 * A mixed load judged body by body: a few thousand concurrent requests (hits, misses, passes,
 * HEAD, shuffled queries, `Vary: Accept-Language` variants, invalidations with grace and
 * refresh) against an origin that streams each body in chunks through a reused buffer. The origin
 * records a checksum of every body it produced per path and variant; every body a client
 * receives must be one of those for its own path and variant, and every HEAD must be empty.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { test } from 'node:test';
import { createCache } from '../../src/index.js';
import { closedAfterFile, listen } from '../helpers/http.js';

const tracked = closedAfterFile();
const REQUESTS = 3_000;
const CONCURRENCY = 48;
const PATHS = 40;
const LANGS = ['en', 'fr', 'de'];

const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

/** A deterministic pseudo-random sequence, so a failure replays. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

test(`${REQUESTS} mixed requests: every body is one the origin produced for that key and variant`, async () => {
  const produced = new Map<string, Set<string>>();
  let renders = 0;
  const cache = createCache({ gracePeriod: 50, maxSize: 2 * 1024 * 1024, maxEntrySize: 64 * 1024 });
  tracked.caches.push(cache);
  const origin = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const n = ++renders;
    const url = new URL(req.url ?? '/', 'http://x');
    const id = Number(url.pathname.split('/')[2]);
    const varies = id % 3 === 0;
    const lang = varies ? String(req.headers['accept-language'] ?? 'en') : '-';
    const variant = `${url.pathname}|${url.searchParams.get('v') ?? ''}|${lang}`;
    // Sizes from a few bytes to ~24 KiB, so bodies span several chunks and socket writes.
    const size = 16 + ((id * 977 + n * 131) % 24_000);
    const line = `${variant}|render ${n}|`;
    const body = Buffer.alloc(size, line);
    let set = produced.get(variant);
    if (set === undefined) produced.set(variant, (set = new Set()));
    set.add(sha(body));
    res.statusCode = 200;
    res.setHeader('content-type', 'text/plain');
    if (id % 10 === 7) res.setHeader('cache-control', 'no-store');
    else res.setHeader('cache-control', `public, max-age=${id % 4 === 1 ? 0 : 60}`);
    if (varies) res.setHeader('vary', 'Accept-Language');
    if (n % 5 === 0) await new Promise((r) => setTimeout(r, 2));
    // Written through one reused buffer, overwritten once each write callback ran.
    const scratch = Buffer.alloc(4096);
    for (let at = 0; at < body.length; at += scratch.length) {
      const part = body.subarray(at, at + scratch.length);
      part.copy(scratch);
      const view = scratch.subarray(0, part.length);
      await new Promise<void>((resolve) => res.write(view, () => resolve()));
      scratch.fill(0);
    }
    res.end();
  };
  const server = await listen(cache.wrap(origin));
  tracked.servers.push(server);
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const next = random(10);
  const mismatches: string[] = [];
  let sent = 0;
  let heads = 0;

  const one = (): Promise<void> => {
    const id = Math.floor(next() * PATHS);
    const v = Math.floor(next() * 3);
    const lang = LANGS[Math.floor(next() * LANGS.length)]!;
    const head = next() < 0.05;
    // The same query in either order: one key, one variant.
    const query = next() < 0.5 ? `?v=${v}&z=1` : `?z=1&v=${v}`;
    const path = `/p/${id}`;
    const variant = `${path}|${v}|${id % 3 === 0 ? lang : '-'}`;
    return new Promise<void>((resolve, reject) => {
      const req = http.request(`${server.url}${path}${query}`, { agent, method: head ? 'HEAD' : 'GET', headers: { 'accept-language': lang } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          if (head) {
            heads++;
            if (body.length !== 0) mismatches.push(`HEAD ${variant} had a body`);
          } else if (!produced.get(variant)?.has(sha(body))) {
            mismatches.push(`${variant} ${res.headers['x-cache']} ${body.subarray(0, 60).toString()}`);
          }
          resolve();
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
  };

  const worker = async (): Promise<void> => {
    while (sent < REQUESTS) {
      const i = sent++;
      // Every 150 requests, invalidate a path (soft: served in grace while one refresh runs).
      if (i % 150 === 0) await cache.invalidate(`/p/${Math.floor(next() * PATHS)}`);
      await one();
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  agent.destroy();

  assert.deepEqual(mismatches.slice(0, 5), [], `${mismatches.length} bodies were not what the origin produced`);
  const stats = cache.stats();
  // The mix really was mixed: hits, misses, passes, stale answers and invalidations all happened.
  assert.ok(stats.hits > REQUESTS / 3, `hits ${stats.hits}`);
  assert.ok(stats.misses > PATHS, `misses ${stats.misses}`);
  assert.ok(stats.passes > 0, `passes ${stats.passes}`);
  assert.ok(stats.invalidations >= REQUESTS / 150, `invalidations ${stats.invalidations}`);
  assert.ok(heads > 0);
  assert.ok(renders < REQUESTS, `renders ${renders}`);
});
