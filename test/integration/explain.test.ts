/**
 * Explain over real sockets: `GET /_stratacache/explain?url=` behind the flush guard, and
 * `stratacache explain URL` (JSON when not a terminal, a readable table on one). What it says is
 * checked against what the cache did: where each variant is (memory, disk), its freshness and
 * validators, tags and the rule, the invalidations that reached it, and why the last response was
 * stored or refused.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { runExplain } from '../../src/cli/explain.js';
import { createCache, diskStore, memoryStore, type CacheOptions } from '../../src/index.js';
import type { Explanation } from '../../src/observe/explain.js';
import { closedAfterFile, listen, request } from '../helpers/http.js';

const tracked = closedAfterFile();

async function site(options: CacheOptions) {
  const cache = createCache(options);
  tracked.caches.push(cache);
  let renders = 0;
  const srv = await listen(
    cache.wrap((req, res) => {
      renders++;
      const url = new URL(req.url ?? '/', 'http://x');
      if (url.pathname === '/session') {
        res.writeHead(200, { 'set-cookie': 'sid=1', 'cache-control': 'public, max-age=60' });
        res.end('personal');
        return;
      }
      const headers: Record<string, string> = { 'cache-control': 'max-age=120', etag: '"v1"', 'surrogate-key': 'page-a shared', 'content-type': 'text/plain' };
      if (url.pathname.startsWith('/lang')) headers.vary = 'accept-language';
      res.writeHead(200, headers);
      res.end(`render ${renders}`);
    }),
  );
  tracked.servers.push(srv);
  const explain = async (url: string, headers: Record<string, string> = {}) => {
    const r = await request(`${srv.url}/_stratacache/explain?url=${encodeURIComponent(url)}`, { headers });
    return { status: r.status, body: r.status === 200 ? (JSON.parse(r.body) as Explanation) : undefined, text: r.body };
  };
  return { cache, srv, explain, renders: () => renders };
}

test('explain: key, variants in memory and on disk, freshness, validators, tags, rule, invalidations, last outcome', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sc-explain-'));
  const { cache, srv, explain } = await site({ stores: [memoryStore({ maxSize: 1 << 20 }), diskStore({ dir, maxSize: 1 << 24 })], rules: [{ match: '/news/**', tags: ['news'], name: 'news pages' }] });
  await request(`${srv.url}/news/a`);
  const e = (await explain('/news/a')).body!;
  assert.equal(e.url, '/news/a');
  assert.equal(e.key, `127.0.0.1:${srv.port}/news/a`);
  assert.equal(e.rule?.name, 'news pages');
  assert.deepEqual(e.rule?.tags, ['news']);
  assert.equal(e.variants.length, 1);
  const v = e.variants[0]!;
  assert.equal(v.selected, true);
  assert.deepEqual(
    v.tiers.map((t) => [t.tier, t.found]),
    [
      ['memory', true],
      ['disk', true],
    ],
  );
  assert.equal(v.entry?.state, 'fresh');
  assert.ok(v.entry!.ttl >= 118 && v.entry!.ttl <= 120, String(v.entry!.ttl));
  assert.equal(v.entry?.etag, '"v1"');
  assert.deepEqual(v.entry?.tags, ['page-a', 'shared', 'news'], "the origin's tags and the rule's");
  assert.equal(e.last?.outcome, 'stored');
  assert.deepEqual(e.invalidations, []);

  await cache.invalidateTags(['news']);
  await cache.invalidate('/other');
  await cache.invalidate('/news', { scope: 'tree' });
  const after = (await explain(`http://127.0.0.1:${srv.port}/news/a`)).body!;
  assert.deepEqual(
    after.invalidations.map((i) => [i.paths, i.tags]),
    [
      [['/news'], []],
      [[], ['news']],
    ],
    'newest first; /other did not reach it',
  );
  assert.equal(after.variants[0]?.entry?.invalidated?.hard, false);
});

test('explain: variants by Vary, and a refused response with its reason', async () => {
  const { srv, explain } = await site({});
  await request(`${srv.url}/lang`, { headers: { 'accept-language': 'en' } });
  await request(`${srv.url}/lang`, { headers: { 'accept-language': 'fr' } });
  const e = (await explain('/lang', { 'accept-language': 'fr' })).body!;
  assert.deepEqual(e.vary, ['accept-language']);
  assert.equal(e.variants.length, 2);
  assert.deepEqual(
    e.variants.map((v) => [v.key.endsWith('accept-language:fr'), v.selected, v.tiers[0]?.found]),
    [
      [false, false, true],
      [true, true, true],
    ],
  );
  await request(`${srv.url}/session`);
  const refused = (await explain('/session')).body!;
  assert.equal(refused.last?.outcome, 'refused');
  assert.equal(refused.last?.reason, 'set-cookie');
  assert.equal(refused.passing, 'set-cookie', 'remembered as hit-for-miss');
  assert.deepEqual(refused.variants[0]?.tiers, [{ tier: 'memory', found: false }]);
  assert.equal((await explain('nope')).status, 400);
});

test('explain is behind the flush guard; the CLI prints JSON off a terminal and a table on one', async () => {
  const { srv } = await site({ flush: { token: 'explain-token-1234567890' } });
  await request(`${srv.url}/page`);
  const denied = await request(`${srv.url}/_stratacache/explain?url=/page`);
  assert.ok(denied.status === 401 || denied.status === 403, String(denied.status));
  const lines: string[] = [];
  const io = (tty: boolean) => ({ out: (t: string) => void lines.push(t), err: (t: string) => void lines.push(t), raw: () => {}, tty, env: { STRATACACHE_FLUSH_TOKEN: 'explain-token-1234567890' }, cwd: '.', onSignal: () => {} });
  assert.equal(await runExplain(['/page', '--url', srv.url], io(false)), 0);
  const json = JSON.parse(lines.pop()!) as Explanation;
  assert.equal(json.variants[0]?.entry?.status, 200);
  assert.equal(await runExplain([`${srv.url}/page`], io(true)), 0);
  const text = lines.pop()!;
  assert.match(text, /^key +"127\.0\.0\.1:\d+\/page"$/m);
  assert.match(text, /^ +status +200, fresh \(ttl (2.0|1.9) min, Age \d s\), 8 B$/m);
  assert.match(text, /^ +validators +ETag "v1"$/m);
  assert.match(text, /^last response +stored at /m);
  assert.equal(await runExplain(['/page', '--url', srv.url], { ...io(true), env: {} }), 1);
  assert.match(lines.pop()!, /refused the explain request: 40[13]/);
});
