/**
 * The behaviour every adapter must show, asserted through a real server on 127.0.0.1: what the
 * client receives (status, body, X-Cache, Cache-Status, Age, Content-Length) and how many times
 * the origin rendered. Each adapter test file calls {@link adapterSuite} with a `start` that puts
 * the cache in front of an {@link Origin} in that framework's idiom.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, test, type TestContext } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCache, diskStore, memoryStore, type CacheOptions, type StrataCache } from '../../src/index.js';
import { request, sleep, type Reply, type Running } from './http.js';
import { Origin, until, type Route } from './origin.js';

/** Puts `cache` in front of `origin` and listens on 127.0.0.1:0. */
export type Start = (cache: StrataCache, origin: Origin) => Promise<Running>;

/** What differs between frameworks in front of the same origin. */
export interface AdapterTraits {
  /**
   * The framework answers a handler's throw itself (Express's and Connect's final handler, and
   * Fastify's error handler, send a 500 page): to the cache that is the origin answering 500, which its waiters share (the
   * flight outcome `error`), not a throw it sees (`failed`: one retry between the waiters).
   */
  answersThrows?: boolean;
}

/** A running scenario: the cache, the origin and the server's base URL. */
export interface Scenario {
  cache: StrataCache;
  origin: Origin;
  url: string;
}

const TEXT = { 'content-type': 'text/plain; charset=utf-8' };
const FRESH = { ...TEXT, 'cache-control': 'max-age=60' };

/** A request that may be cut off: the reply, or the error the client saw. */
export async function attempt(url: string, options: Parameters<typeof request>[1] = {}): Promise<Reply | Error> {
  try {
    return await request(url, options);
  } catch (error) {
    return error as Error;
  }
}

/** Asserts the cache status headers (X-Cache and RFC 9211 Cache-Status) of a reply. */
export function assertStatus(reply: Reply, status: 'HIT' | 'MISS' | 'PASS' | 'STALE', message?: string): void {
  assert.equal(reply.headers['x-cache'], status, message ?? `x-cache of ${reply.body.slice(0, 40)}`);
  const expected = { HIT: 'stratacache; hit', MISS: 'stratacache; fwd=uri-miss', PASS: 'stratacache; fwd=bypass', STALE: 'stratacache; hit; detail=stale' }[status];
  assert.equal(reply.headers['cache-status'], expected, message);
}

/** Asserts a full 200 hit: body, status headers, a numeric Age and an exact Content-Length. */
export function assertHit(reply: Reply, body: string, status: 'HIT' | 'STALE' = 'HIT'): void {
  assert.equal(reply.status, 200);
  assert.equal(reply.body, body);
  assertStatus(reply, status);
  assert.match(String(reply.headers.age), /^\d+$/);
  assert.equal(reply.headers['content-length'], String(Buffer.byteLength(body)));
}

/** Starts a cache with `options` in front of an origin following `route`; closes both after the test. */
export async function scenario(t: TestContext, start: Start, route: Route, options: CacheOptions = {}): Promise<Scenario> {
  const cache = createCache(options);
  const origin = new Origin(route);
  const running = await start(cache, origin);
  t.after(async () => {
    await running.close();
    await cache.close();
  });
  return { cache, origin, url: running.url };
}

/** Registers the shared adapter scenarios under `name`. */
export function adapterSuite(name: string, start: Start, traits: AdapterTraits = {}): void {
  const setup = (t: TestContext, route: Route, options?: CacheOptions): Promise<Scenario> => scenario(t, start, route, options);

  describe(`${name}: shared cache behaviour`, { timeout: 60_000 }, () => {
    test('MISS then HIT with Age, Cache-Status and Content-Length; one render', async (t) => {
      const { url, origin, cache } = await setup(t, (_req, n) => ({ headers: FRESH, body: `hello ${n}` }));
      const first = await request(`${url}/basic`);
      assert.equal(first.status, 200);
      assert.equal(first.body, 'hello 1');
      assertStatus(first, 'MISS');
      const second = await request(`${url}/basic`);
      assertHit(second, 'hello 1');
      assert.equal(second.headers.age, '0');
      assert.equal(second.headers['content-type'], 'text/plain; charset=utf-8');
      assert.equal(second.headers['cache-control'], 'max-age=60');
      assert.equal(origin.renders('/basic'), 1);
      const stats = cache.stats();
      assert.equal(stats.misses, 1);
      assert.equal(stats.hits, 1);
      assert.equal(stats.stores, 1);
      assert.equal(stats.entries, 1);
    });

    test('coalescing: 100 concurrent cold requests, exactly one render, every body equal', async (t) => {
      const body = `coalesced ${'x'.repeat(2000)}`;
      const s: { cache?: StrataCache } = {};
      // The leader holds its render open until the 99 others are waiting on it.
      const gate = until(() => (s.cache?.stats().loadsDeduped ?? 0) >= 99);
      const { url, origin, cache } = await setup(t, () => ({ headers: FRESH, body, gate }));
      s.cache = cache;
      const replies = await Promise.all(Array.from({ length: 100 }, () => request(`${url}/coalesce`)));
      assert.equal(origin.renders('/coalesce'), 1);
      for (const r of replies) {
        assert.equal(r.status, 200);
        assert.equal(r.body, body);
      }
      assert.equal(replies.filter((r) => r.headers['x-cache'] === 'MISS').length, 1);
      for (const r of replies.filter((r) => r.headers['x-cache'] !== 'MISS')) assertHit(r, body);
      const stats = cache.stats();
      assert.equal(stats.misses, 1);
      assert.equal(stats.loadsDeduped, 99);
      assert.equal(stats.hits, 99);
    });

    test('Vary: each Accept-Language variant renders once and is served its own', async (t) => {
      const { url, origin } = await setup(t, (req) => ({
        headers: { ...FRESH, vary: 'Accept-Language' },
        body: `lang=${String(req.headers['accept-language'] ?? 'none')}`,
      }));
      const fr = { headers: { 'accept-language': 'fr' } };
      const de = { headers: { 'accept-language': 'de' } };
      assertStatus(await request(`${url}/vary`, fr), 'MISS');
      const deFirst = await request(`${url}/vary`, de);
      assert.equal(deFirst.body, 'lang=de');
      assertStatus(deFirst, 'MISS');
      assert.equal(origin.renders('/vary'), 2);
      assertHit(await request(`${url}/vary`, fr), 'lang=fr');
      assertHit(await request(`${url}/vary`, de), 'lang=de');
      assert.equal((await request(`${url}/vary`, de)).headers.vary, 'Accept-Language');
      assert.equal(origin.renders('/vary'), 2);

      // Cold and concurrent: a waiter of another variant renders its own, never gets the leader's.
      const [it, es] = await Promise.all([
        request(`${url}/vary2`, { headers: { 'accept-language': 'it' } }),
        request(`${url}/vary2`, { headers: { 'accept-language': 'es' } }),
      ]);
      assert.equal(it.body, 'lang=it');
      assert.equal(es.body, 'lang=es');
      assert.equal(origin.renders('/vary2'), 2);
      assertHit(await request(`${url}/vary2`, { headers: { 'accept-language': 'es' } }), 'lang=es');
    });

    test('Vary: * is never stored', async (t) => {
      const { url, origin, cache } = await setup(t, (_req, n) => ({ headers: { ...FRESH, vary: '*' }, body: `star ${n}` }));
      assertStatus(await request(`${url}/star`), 'MISS');
      const second = await request(`${url}/star`);
      assert.equal(second.body, 'star 2');
      assertStatus(second, 'PASS');
      assert.equal(origin.renders('/star'), 2);
      assert.equal(cache.stats().stores, 0);
    });

    test('304 for If-None-Match and If-Modified-Since from a stored entry; a conditional leader gets 200', async (t) => {
      const lastModified = 'Mon, 01 Jan 2024 00:00:00 GMT';
      const { url, origin } = await setup(t, () => ({ headers: { ...FRESH, etag: '"v1"', 'last-modified': lastModified }, body: 'conditional body' }));
      // Cold: the leader's validators are not passed on; it gets the full response, which is stored.
      const leader = await request(`${url}/cond`, { headers: { 'if-none-match': '"v1"' } });
      assert.equal(leader.status, 200);
      assert.equal(leader.body, 'conditional body');
      assertStatus(leader, 'MISS');
      assertHit(await request(`${url}/cond`), 'conditional body');

      const inm = await request(`${url}/cond`, { headers: { 'if-none-match': '"v1"' } });
      assert.equal(inm.status, 304);
      assert.equal(inm.body, '');
      assert.equal(inm.headers.etag, '"v1"');
      assertStatus(inm, 'HIT');
      assert.match(String(inm.headers.age), /^\d+$/);
      const weak = await request(`${url}/cond`, { headers: { 'if-none-match': 'W/"v0", W/"v1"' } });
      assert.equal(weak.status, 304);

      const ims = await request(`${url}/cond`, { headers: { 'if-modified-since': lastModified } });
      assert.equal(ims.status, 304);
      assert.equal(ims.body, '');
      assert.equal(ims.headers['last-modified'], lastModified);

      assertHit(await request(`${url}/cond`, { headers: { 'if-none-match': '"v2"' } }), 'conditional body');
      assertHit(await request(`${url}/cond`, { headers: { 'if-modified-since': 'Sun, 31 Dec 2023 00:00:00 GMT' } }), 'conditional body');
      assert.equal(origin.renders('/cond'), 1);
    });

    test('HEAD is served from the GET entry without a body; a cold HEAD fills the GET entry', async (t) => {
      const { url, origin } = await setup(t, () => ({ headers: FRESH, body: 'head body!' }));
      assertStatus(await request(`${url}/head`), 'MISS');
      const head = await request(`${url}/head`, { method: 'HEAD' });
      assert.equal(head.status, 200);
      assert.equal(head.raw.length, 0);
      assertStatus(head, 'HIT');
      assert.equal(head.headers['content-length'], '10');
      assert.equal(origin.renders('/head'), 1);

      const coldHead = await request(`${url}/head2`, { method: 'HEAD' });
      assert.equal(coldHead.status, 200);
      assert.equal(coldHead.raw.length, 0);
      assertStatus(coldHead, 'MISS');
      assertHit(await request(`${url}/head2`), 'head body!');
      assert.equal(origin.renders('/head2'), 1);
    });

    test('no-store and private responses are never served to another client', async (t) => {
      const { url, origin, cache } = await setup(t, (req, n) =>
        req.path === '/no-store'
          ? { headers: { ...TEXT, 'cache-control': 'no-store' }, body: `no-store ${n}` }
          : { headers: { ...TEXT, 'cache-control': 'private, max-age=60' }, body: `private for ${String(req.headers['x-user'])}` },
      );
      assertStatus(await request(`${url}/no-store`), 'MISS');
      const again = await request(`${url}/no-store`);
      assert.equal(again.body, 'no-store 2');
      assertStatus(again, 'PASS');
      assert.equal(origin.renders('/no-store'), 2);

      assert.equal((await request(`${url}/private`, { headers: { 'x-user': 'alice' } })).body, 'private for alice');
      const bob = await request(`${url}/private`, { headers: { 'x-user': 'bob' } });
      assert.equal(bob.body, 'private for bob');
      assertStatus(bob, 'PASS');
      assert.equal(origin.renders('/private'), 2);
      assert.equal(cache.stats().stores, 0);
    });

    test('Set-Cookie: a response is never served to another client, the cookie never leaks', async (t) => {
      const { url, origin, cache } = await setup(t, (_req, n) => ({
        headers: { ...TEXT, 'cache-control': 'public, max-age=60', 'set-cookie': `sid=secret-${n}; HttpOnly` },
        body: 'cookie page',
      }));
      // Cold and concurrent: the followers of a Set-Cookie leader render for themselves.
      const replies = await Promise.all(Array.from({ length: 5 }, () => request(`${url}/cookie`)));
      const cookies = replies.map((r) => String(r.headers['set-cookie']));
      assert.equal(new Set(cookies).size, 5, `each client gets its own cookie: ${cookies.join(' | ')}`);
      const later = await request(`${url}/cookie`);
      assert.deepEqual(later.headers['set-cookie'], ['sid=secret-6; HttpOnly']);
      assertStatus(later, 'PASS');
      for (const r of [...replies, later]) {
        const own = String(r.headers['set-cookie']);
        for (let n = 1; n <= 6; n++) {
          const secret = `secret-${n};`;
          if (own.includes(secret)) continue;
          assert.ok(!JSON.stringify(r.headers).includes(secret), `another client's ${secret} leaked in headers`);
          assert.ok(!r.body.includes(`secret-${n}`), `another client's secret-${n} leaked in the body`);
        }
      }
      assert.equal(origin.renders('/cookie'), 6);
      assert.equal(cache.stats().stores, 0);
    });

    test('Authorization: not stored unless public/s-maxage; a stored shareable response is served', async (t) => {
      const { url, origin } = await setup(t, (req, n) => ({
        headers: { ...TEXT, 'cache-control': { '/auth-public': 'public, max-age=60', '/auth-shared': 's-maxage=60' }[req.path] ?? 'max-age=60' },
        body: `${req.path} ${n} for ${String(req.headers.authorization ?? 'anonymous')}`,
      }));
      const alice = { headers: { authorization: 'Bearer alice' } };
      const bob = { headers: { authorization: 'Bearer bob' } };
      assert.equal((await request(`${url}/auth`, alice)).body, '/auth 1 for Bearer alice');
      const bobReply = await request(`${url}/auth`, bob);
      assert.equal(bobReply.body, '/auth 2 for Bearer bob');
      assert.ok(!bobReply.body.includes('alice'));
      assert.equal(origin.renders('/auth'), 2);

      // An entry stored for an anonymous client (not public) is not served to an authenticated one.
      assert.equal((await request(`${url}/auth`)).body, '/auth 3 for anonymous');
      assertHit(await request(`${url}/auth`), '/auth 3 for anonymous');
      assert.equal((await request(`${url}/auth`, bob)).body, '/auth 4 for Bearer bob');
      assert.equal(origin.renders('/auth'), 4);

      assertStatus(await request(`${url}/auth-public`, alice), 'MISS');
      assertHit(await request(`${url}/auth-public`, bob), '/auth-public 1 for Bearer alice');
      assertHit(await request(`${url}/auth-public`), '/auth-public 1 for Bearer alice');
      assert.equal(origin.renders('/auth-public'), 1);

      assertStatus(await request(`${url}/auth-shared`, bob), 'MISS');
      assertHit(await request(`${url}/auth-shared`, alice), '/auth-shared 1 for Bearer bob');
      assert.equal(origin.renders('/auth-shared'), 1);
    });

    test('ignoreUrlParams: utm_* globs share one entry; a render that is stored never sees them', async (t) => {
      const { url, origin } = await setup(t, (req) => ({ headers: FRESH, body: `url=${req.url}` }), { ignoreUrlParams: ['utm_*', 'fbclid'] });
      const first = await request(`${url}/landing?id=7&utm_source=news&utm_medium=mail`);
      // The handler sees the form the key represents (issue 10: no reflected ignored parameter).
      assert.equal(first.body, 'url=/landing?id=7');
      assertHit(await request(`${url}/landing?utm_campaign=x&id=7&fbclid=abc`), first.body);
      assertHit(await request(`${url}/landing?id=7`), first.body);
      assertStatus(await request(`${url}/landing?id=8&utm_source=news`), 'MISS');
      assert.equal(origin.renders('/landing'), 2);
    });

    test('ignoreUrlParams as a function', async (t) => {
      const { url, origin } = await setup(t, (req) => ({ headers: FRESH, body: `url=${req.url}` }), {
        ignoreUrlParams: (name) => name.startsWith('_') || name === 'session',
      });
      await request(`${url}/fn?q=1&_ts=1&session=abc`);
      assertHit(await request(`${url}/fn?session=def&q=1&_ts=2`), 'url=/fn?q=1');
      assertStatus(await request(`${url}/fn?q=2`), 'MISS');
      assert.equal(origin.renders('/fn'), 2);
    });

    test('query order is normalised, in the key and in what the render sees', async (t) => {
      const { url, origin } = await setup(t, (req) => ({ headers: FRESH, body: `url=${req.url}` }));
      await request(`${url}/q?b=2&a=1&c=3`);
      assertHit(await request(`${url}/q?a=1&c=3&b=2`), 'url=/q?a=1&b=2&c=3');
      assertStatus(await request(`${url}/q?a=1&b=2`), 'MISS');
      assert.equal(origin.renders('/q'), 2);
    });

    test('byte-bounded eviction: past maxSize the oldest keys render again', async (t) => {
      const maxSize = 20_000;
      const { url, origin, cache } = await setup(t, (req) => ({ headers: FRESH, body: `${req.path}:`.padEnd(5_000, 'e') }), { maxSize, maxEntrySize: 8_000 });
      for (let i = 1; i <= 6; i++) assertStatus(await request(`${url}/e/${i}`), 'MISS');
      assert.ok(cache.stats().bytes <= maxSize, `charged ${cache.stats().bytes} bytes`);
      assert.ok(cache.stats().entries < 6);
      assertHit(await request(`${url}/e/6`), '/e/6:'.padEnd(5_000, 'e'));
      const again = await request(`${url}/e/1`);
      assertStatus(again, 'MISS');
      assert.equal(again.body, '/e/1:'.padEnd(5_000, 'e'));
      assert.equal(origin.renders('/e/1'), 2);
      assert.equal(origin.renders('/e/6'), 1);
    });

    test('an oversize body streams through completely and is not stored', async (t) => {
      const chunks = Array.from({ length: 5 }, (_, i) => Buffer.alloc(16_384, 65 + i));
      const whole = Buffer.concat(chunks);
      const { url, origin, cache } = await setup(t, () => ({ headers: { ...FRESH, 'content-type': 'application/octet-stream' }, chunks }), {
        maxSize: 1_000_000,
        maxEntrySize: 10_000,
      });
      const first = await request(`${url}/big`);
      assert.equal(first.status, 200);
      assert.ok(first.raw.equals(whole), `received ${first.raw.length} of ${whole.length} bytes`);
      assertStatus(first, 'MISS');
      const second = await request(`${url}/big`);
      assert.ok(second.raw.equals(whole));
      assertStatus(second, 'PASS');
      assert.equal(origin.renders('/big'), 2);
      assert.equal(cache.stats().stores, 0);
    });

    test('a large entry on the disk tier is streamed from its file: every byte, one render', async (t) => {
      const big = Buffer.alloc(3 * 1024 * 1024);
      for (let i = 0; i < big.length; i++) big[i] = (i * 31) % 253;
      const dir = mkdtempSync(join(tmpdir(), 'strata-suite-'));
      const disk = diskStore({ dir, maxSize: 64 * 1024 * 1024, rescanInterval: 0 });
      const { url, origin } = await setup(t, () => ({ headers: { ...FRESH, 'content-type': 'application/octet-stream' }, body: big }), {
        maxEntrySize: 16 * 1024 * 1024,
        stores: [memoryStore({ maxSize: 4 * 1024 * 1024, maxEntrySize: 1024 * 1024 }), disk],
      });
      // After the scenario's own teardown (hooks run in order): the cache is closed first.
      t.after(() => rmSync(dir, { recursive: true, force: true }));
      assertStatus(await request(`${url}/large`), 'MISS');
      assert.ok(await until(() => disk.size().entries === 1), 'the entry reached the disk tier');
      for (let i = 1; i <= 2; i++) {
        const hit = await request(`${url}/large`);
        assertStatus(hit, 'HIT');
        assert.equal(hit.headers['content-length'], String(big.length));
        assert.ok(hit.raw.equals(big), `received ${hit.raw.length} of ${big.length} bytes`);
        assert.equal(disk.stats().readsStreamed, i);
      }
      assert.equal(origin.renders('/large'), 1);
    });

    test('a handler that throws before writing: 500, nothing stored', async (t) => {
      const { url, origin, cache } = await setup(t, () => ({ headers: FRESH, fail: 'before' }));
      const first = await request(`${url}/boom`);
      assert.equal(first.status, 500);
      const second = await request(`${url}/boom`);
      assert.equal(second.status, 500);
      assert.notEqual(second.headers['x-cache'], 'HIT');
      assert.equal(origin.renders('/boom'), 2);
      assert.equal(cache.stats().stores, 0);
    });

    test('a handler that throws after writing: the client sees a cut-off response, nothing stored', async (t) => {
      const { url, origin, cache } = await setup(t, () => ({ headers: FRESH, chunks: ['first part, ', 'second part'], fail: 'after' }));
      for (let i = 1; i <= 2; i++) {
        const outcome = await attempt(`${url}/cut`);
        if (!(outcome instanceof Error)) {
          assert.notEqual(outcome.body, 'first part, second part', 'the response must not look complete');
          assert.notEqual(outcome.headers['x-cache'], 'HIT');
        }
      }
      assert.equal(origin.renders('/cut'), 2);
      assert.equal(cache.stats().stores, 0);
    });

    for (const when of ['before', 'after'] as const) {
      test(`a leader failing ${when} writing does not leave its waiters hanging`, async (t) => {
        const s: { cache?: StrataCache } = {};
        const gate = until(() => (s.cache?.stats().loadsDeduped ?? 0) >= 4);
        const { url, origin, cache } = await setup(t, (_req, n) =>
          n === 1 ? { headers: FRESH, chunks: ['partial, ', 'never sent'], gate, fail: when } : { headers: FRESH, body: `recovered ${n}` },
        );
        s.cache = cache;
        const replies = await Promise.all(Array.from({ length: 5 }, () => attempt(`${url}/flaky`)));
        if (when === 'before' && traits.answersThrows === true) {
          // The framework's 500 page is the origin's answer: every waiter gets it, from one render.
          for (const r of replies) assert.equal((r as Reply).status, 500);
          assert.equal(new Set(replies.map((r) => (r as Reply).body)).size, 1);
          assert.equal(origin.renders('/flaky'), 1);
          assert.equal(cache.stats().stores, 0);
          return;
        }
        // 4 waited for the leader, then 3 of them for the one retry the 4th led.
        assert.equal(cache.stats().loadsDeduped, 7);
        const ok = replies.filter((r): r is Reply => !(r instanceof Error) && r.status === 200 && r.body.startsWith('recovered'));
        assert.equal(ok.length, 4, 'every waiter gets a whole response');
        // One retry between the waiters (issue 10): the first leads it, the others share it.
        for (const r of ok) assert.equal(r.body, 'recovered 2');
        const leader = replies.find((r) => !ok.includes(r as Reply));
        if (when === 'before') assert.equal((leader as Reply).status, 500);
        else if (!(leader instanceof Error)) assert.notEqual(leader!.body, 'partial, never sent');
        assert.equal(origin.renders('/flaky'), 2);
        assert.equal(cache.stats().stores, 1);
        // The failure is not remembered as uncacheable: the retry was stored.
        assertHit(await request(`${url}/flaky`), 'recovered 2');
      });
    }

    test('X-Forwarded-Host cannot poison the entry other clients get', async (t) => {
      const { url, origin } = await setup(t, (req) => ({
        headers: { ...FRESH, 'content-type': 'text/html' },
        body: `<script src="//${String(req.headers['x-forwarded-host'] ?? req.headers.host)}/app.js"></script>`,
      }));
      const host = new URL(url).host;
      const attacker = await request(`${url}/xfh`, { headers: { 'x-forwarded-host': 'evil.example' } });
      assert.equal(attacker.status, 200);
      const victim = await request(`${url}/xfh`);
      assert.ok(!victim.body.includes('evil.example'), victim.body);
      assert.equal(victim.body, `<script src="//${host}/app.js"></script>`);
      assert.equal(origin.renders('/xfh'), 1);
      // A hit for the attacker cannot change it either.
      await request(`${url}/xfh`, { headers: { 'x-forwarded-host': 'evil.example', forwarded: 'host=evil.example' } });
      assert.ok(!(await request(`${url}/xfh`)).body.includes('evil'));
    });

    test('a successful unsafe method invalidates the URL; a failed one does not', async (t) => {
      const { url } = await setup(t, (req, n) =>
        req.method === 'GET' || req.method === 'HEAD'
          ? { headers: FRESH, body: `item v${n}` }
          : { status: req.headers['x-fail'] === '1' ? 500 : 200, headers: TEXT, body: 'saved' },
      );
      assertStatus(await request(`${url}/item?id=1`), 'MISS');
      assertHit(await request(`${url}/item?id=1`), 'item v1');
      const failed = await request(`${url}/item?id=1`, { method: 'POST', headers: { 'x-fail': '1' }, body: 'x' });
      assert.equal(failed.status, 500);
      assertHit(await request(`${url}/item?id=1`), 'item v1');
      const post = await request(`${url}/item?id=1`, { method: 'POST', body: 'x' });
      assert.equal(post.body, 'saved');
      assertStatus(post, 'PASS');
      const after = await request(`${url}/item?id=1`);
      assert.equal(after.body, 'item v4');
      assertStatus(after, 'MISS');
      const del = await request(`${url}/item?id=1`, { method: 'DELETE' });
      assert.equal(del.status, 200);
      assert.equal((await request(`${url}/item?id=1`)).body, 'item v6');
    });

    test('hit-for-pass: after a no-store response, concurrent requests go straight to the handler', async (t) => {
      const s: { origin?: Origin } = {};
      const gate = until(() => (s.origin?.active ?? 0) >= 10, 3_000);
      const { url, origin, cache } = await setup(t, (_req, n) => ({ headers: { ...TEXT, 'cache-control': 'no-store' }, body: `pass ${n}`, gate: n === 1 ? undefined : gate }));
      s.origin = origin;
      assertStatus(await request(`${url}/hfp`), 'MISS');
      // Each render of the batch waits until all ten run at once: only possible if none waits on another.
      const replies = await Promise.all(Array.from({ length: 10 }, () => request(`${url}/hfp`)));
      assert.equal(origin.renders('/hfp'), 11);
      assert.equal(origin.maxActive, 10);
      for (const r of replies) assertStatus(r, 'PASS');
      assert.equal(new Set(replies.map((r) => r.body)).size, 10);
      assert.equal(cache.stats().loadsDeduped, 0);
    });

    test('stale-while-revalidate: STALE at once, one background render for 20 requests, then HIT', async (t) => {
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      const { url, origin, cache } = await setup(t, (_req, n) => ({
        headers: { ...TEXT, 'cache-control': 'max-age=1, stale-while-revalidate=30' },
        body: `swr v${n}`,
        gate: n === 1 ? undefined : held,
      }));
      assertStatus(await request(`${url}/swr`), 'MISS');
      await sleep(1_100);
      const stored = once(cache, 'store');
      // The background render is held open until all 20 replies are in: they cannot have waited for it.
      const stale = await Promise.all(Array.from({ length: 20 }, () => request(`${url}/swr`)));
      for (const r of stale) {
        assertHit(r, 'swr v1', 'STALE');
        assert.equal(r.headers.age, '1');
      }
      assert.equal(origin.renders('/swr'), 2);
      release();
      await stored;
      assertHit(await request(`${url}/swr`), 'swr v2');
      assert.equal(origin.renders('/swr'), 2);
      assert.equal(cache.stats().stale, 20);
    });

    test('404 pages are stored; 500 pages are not', async (t) => {
      const { url, origin } = await setup(t, (req, n) => ({ status: req.path === '/missing' ? 404 : 500, headers: TEXT, body: `${req.path} ${n}` }));
      const first = await request(`${url}/missing`);
      assert.equal(first.status, 404);
      const second = await request(`${url}/missing`);
      assert.equal(second.status, 404);
      assert.equal(second.body, '/missing 1');
      assertStatus(second, 'HIT');
      await request(`${url}/broken`);
      const broken = await request(`${url}/broken`);
      assert.equal(broken.status, 500);
      assert.equal(broken.body, '/broken 2');
      assert.equal(origin.renders('/missing'), 1);
      assert.equal(origin.renders('/broken'), 2);
    });

    test('stale on error: an error status or a throw serves the stale copy, never stored', async (t) => {
      const { url, origin, cache } = await setup(
        t,
        (req, n) =>
          n === 1
            ? { headers: { ...TEXT, 'cache-control': 'max-age=1' }, body: `${req.path} good` }
            : req.path === '/soe-status'
              ? { status: 503, headers: { ...TEXT, 'set-cookie': 'leak=1' }, body: 'down' }
              : { headers: TEXT, fail: 'before' },
        { gracePeriod: 0 },
      );
      assertStatus(await request(`${url}/soe-status`), 'MISS');
      assertStatus(await request(`${url}/soe-throw`), 'MISS');
      await sleep(1_100);
      for (const path of ['/soe-status', '/soe-throw']) {
        const r = await request(`${url}${path}`);
        assertHit(r, `${path} good`, 'STALE');
        assert.equal(r.headers['set-cookie'], undefined, 'no header of the error response');
        assert.equal(origin.renders(path), 2);
      }
      assertHit(await request(`${url}/soe-status`), '/soe-status good', 'STALE');
      assert.equal(origin.renders('/soe-status'), 3);
      assert.equal(cache.stats().staleOnError, 3);
      assert.equal(cache.stats().stores, 2);
    });

    test('refetching flush: the old copy is served while the page renders again in the background', async (t) => {
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      const { url, origin, cache } = await setup(t, (req, n) => ({ headers: { ...TEXT, 'cache-control': 'max-age=3600' }, body: `${req.path} v${n}`, gate: n === 2 ? held : undefined }));
      assertStatus(await request(`${url}/flushed.html`), 'MISS');
      const refetched = once(cache, 'refetch');
      const flush = await request(`${url}/dispatcher/invalidate.cache`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ paths: ['/flushed'], refetch: ['/flushed.html'] }),
      });
      assert.equal(flush.status, 200, flush.body);
      assert.equal((JSON.parse(flush.body) as { refetch: number }).refetch, 1);
      // The refetch is held open: clients get the old copy, nobody waits for the origin.
      assertHit(await request(`${url}/flushed.html`), '/flushed.html v1', 'STALE');
      release();
      await refetched;
      assertHit(await request(`${url}/flushed.html`), '/flushed.html v2');
      assert.equal(origin.renders('/flushed.html'), 2);
      assert.equal(cache.stats().refetches, 1);
    });

    test('prime() of a page still fresh renders it again through the framework, not from memory', async (t) => {
      const { url, origin, cache } = await setup(t, (req, n) => ({ headers: FRESH, body: `${req.path} v${n}` }));
      assertStatus(await request(`${url}/primed.html`), 'MISS');
      assertHit(await request(`${url}/primed.html`), '/primed.html v1');
      // The cache's own render comes back through the adapter: it must reach the origin.
      assert.deepEqual(await cache.prime(['/primed.html'], { host: new URL(url).host }), { ok: 1, failed: 0 });
      assert.equal(origin.renders('/primed.html'), 2);
      assertHit(await request(`${url}/primed.html`), '/primed.html v2');
    });

    test('data-cache sub-requests run through the framework, cached apart from pages', async (t) => {
      const s: { cache?: StrataCache } = {};
      const { url, origin, cache } = await setup(t, (req, n) =>
        req.path === '/fragment'
          ? { headers: { ...TEXT, 'cache-control': 'max-age=60' }, body: `fragment ${n} for ${String(req.headers.host)}` }
          : { headers: FRESH, bodyFrom: async () => `${req.path}: ${(await s.cache!.data.fetch('/fragment')).text()}` },
      );
      s.cache = cache;
      const host = new URL(url).host;
      const a = await request(`${url}/page-a`);
      assert.equal(a.body, `/page-a: fragment 1 for ${host}`);
      assertStatus(a, 'MISS');
      assert.equal((await request(`${url}/page-b`)).body, `/page-b: fragment 1 for ${host}`);
      assertHit(await request(`${url}/page-a`), `/page-a: fragment 1 for ${host}`);
      assert.equal(origin.renders('/fragment'), 1, 'one sub-request render for both pages');
      assert.equal(cache.stats().gets, 3, 'the sub-request did not go through the response cache');
      assert.equal(cache.data.stats().misses, 1);
      assert.equal(cache.data.stats().hits, 1);
      // The fragment changes: the pages that read it turn stale and refresh in the background.
      const refreshed = once(cache, 'store');
      assert.equal(cache.data.delete('/fragment'), true);
      assertHit(await request(`${url}/page-a`), `/page-a: fragment 1 for ${host}`, 'STALE');
      await refreshed;
      assertHit(await request(`${url}/page-a`), `/page-a: fragment 2 for ${host}`);
    });

    test('bypass(req) sends a request straight to the handler', async (t) => {
      const { url, origin } = await setup(t, (_req, n) => ({ headers: FRESH, body: `page ${n}` }), { bypass: (req) => req.headers['x-preview'] === '1' });
      await request(`${url}/page`);
      const preview = await request(`${url}/page`, { headers: { 'x-preview': '1' } });
      assert.equal(preview.body, 'page 2');
      assertStatus(preview, 'PASS');
      assertHit(await request(`${url}/page`), 'page 1');
      assert.equal(origin.renders('/page'), 2);
    });
  });
}
