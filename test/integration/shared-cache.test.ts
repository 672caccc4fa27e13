/**
 * The shared-cache rules a user sees through a real server: no page for the wrong client
 * (directive case, cookies), targeted CDN-Cache-Control, any final status with explicit
 * freshness, invalidation by any unsafe method, the origin's Date served on a hit.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { describe, test } from 'node:test';
import { createCache, type CacheOptions } from '../../src/index.js';
import { closedAfterFile, listen, request } from '../helpers/http.js';

const tracked = closedAfterFile();

/** A cache in front of `respond`, counting renders. */
async function site(options: CacheOptions, respond: (req: IncomingMessage, res: ServerResponse, n: number) => void) {
  const cache = createCache(options);
  let renders = 0;
  const running = await listen(cache.wrap((req, res) => respond(req, res, ++renders)));
  tracked.servers.push(running);
  tracked.caches.push(cache);
  return { url: running.url, renders: () => renders, cache };
}

/** The page greets whoever the session cookie names. */
function greeting(req: IncomingMessage, res: ServerResponse, cacheControl: string | undefined): void {
  const who = /session=(\w+)/.exec(req.headers.cookie ?? '')?.[1] ?? 'guest';
  if (cacheControl !== undefined) res.setHeader('cache-control', cacheControl);
  res.end(`hello ${who}`);
}

describe('no page for the wrong client', { timeout: 20_000 }, () => {
  test("Private in any capitalisation: alice's page never reaches bob", async () => {
    for (const cc of ['Private, max-age=60', 'PRIVATE, Max-Age=60', 'private, max-age=60']) {
      const s = await site({}, (req, res) => greeting(req, res, cc));
      assert.equal((await request(`${s.url}/me`, { headers: { cookie: 'session=alice' } })).body, 'hello alice');
      const bob = await request(`${s.url}/me`, { headers: { cookie: 'session=bob' } });
      assert.equal(bob.body, 'hello bob', cc);
      assert.equal(s.renders(), 2, cc);
    }
  });

  test('No-Store and S-Maxage in odd case are obeyed', async () => {
    const s = await site({ defaultTtl: 0 }, (req, res) => res.setHeader('cache-control', req.url === '/a' ? 'No-Store, Max-Age=60' : 'S-MAXAGE=60').end(req.url));
    await request(`${s.url}/a`);
    await request(`${s.url}/a`);
    assert.equal(s.renders(), 2);
    await request(`${s.url}/b`);
    assert.equal((await request(`${s.url}/b`)).headers['x-cache'], 'HIT');
    assert.equal(s.renders(), 3);
  });

  test('a cookie response without explicit freshness is not stored on the default TTL', async () => {
    const s = await site({ defaultTtl: 60_000 }, (req, res) => greeting(req, res, undefined));
    assert.equal((await request(`${s.url}/home`, { headers: { cookie: 'session=alice' } })).body, 'hello alice');
    const anonymous = await request(`${s.url}/home`);
    assert.equal(anonymous.body, 'hello guest');
    assert.equal(s.renders(), 2);
    // The anonymous page is stored (default TTL) and, being anonymous, may serve anyone.
    assert.equal((await request(`${s.url}/home`)).headers['x-cache'], 'HIT');
    assert.equal(s.renders(), 2);
  });

  test('a cookie response with explicit shared freshness is stored', async () => {
    const s = await site({}, (req, res) => greeting(req, res, 'public, max-age=60'));
    await request(`${s.url}/shared`, { headers: { cookie: 'session=alice' } });
    assert.equal((await request(`${s.url}/shared`)).headers['x-cache'], 'HIT');
    assert.equal(s.renders(), 1);
  });

  test('ignoreCookies: analytics cookies do not make a request personal', async () => {
    const s = await site({ ignoreCookies: ['_ga', 'consent*'] }, (req, res) => greeting(req, res, undefined));
    await request(`${s.url}/p`, { headers: { cookie: '_ga=GA1.2.3; consent_ads=no' } });
    const next = await request(`${s.url}/p`);
    assert.equal(next.headers['x-cache'], 'HIT');
    assert.equal(next.body, 'hello guest');
    await request(`${s.url}/q`, { headers: { cookie: '_ga=GA1.2.3; session=carol' } });
    assert.equal((await request(`${s.url}/q`)).body, 'hello guest');
    assert.equal(s.renders(), 3);
  });
});

describe('RFC 9111 details through a server', { timeout: 20_000 }, () => {
  test('CDN-Cache-Control is obeyed only when targeted, and forwarded either way', async () => {
    const respond = (_req: IncomingMessage, res: ServerResponse, n: number): void => {
      res.setHeader('cache-control', 'no-store');
      res.setHeader('cdn-cache-control', 'max-age=60');
      res.end(`render ${n}`);
    };
    const targeted = await site({ targetedCacheControl: ['cdn-cache-control'] }, respond);
    await request(`${targeted.url}/x`);
    const hit = await request(`${targeted.url}/x`);
    assert.equal(hit.body, 'render 1');
    assert.equal(hit.headers['cache-control'], 'no-store');
    assert.equal(hit.headers['cdn-cache-control'], 'max-age=60');
    const plain = await site({}, respond);
    await request(`${plain.url}/x`);
    assert.equal((await request(`${plain.url}/x`)).body, 'render 2');
  });

  test('a 503 with max-age is stored; a 500 without freshness is not', async () => {
    const s = await site({ defaultTtl: 60_000 }, (req, res, n) => {
      res.statusCode = req.url === '/fresh' ? 503 : 500;
      if (req.url === '/fresh') res.setHeader('cache-control', 'max-age=60');
      res.end(`error ${n}`);
    });
    await request(`${s.url}/fresh`);
    const again = await request(`${s.url}/fresh`);
    assert.equal(again.status, 503);
    assert.equal(again.body, 'error 1');
    await request(`${s.url}/plain`);
    assert.equal((await request(`${s.url}/plain`)).body, 'error 3');
  });

  test("a hit serves the origin's Date, not the time of the hit", async () => {
    const date = new Date(Date.now() - 5_000).toUTCString();
    const s = await site({}, (_req, res) => res.setHeader('date', date).setHeader('cache-control', 'max-age=60').end('dated'));
    await request(`${s.url}/d`);
    const hit = await request(`${s.url}/d`);
    assert.equal(hit.headers['x-cache'], 'HIT');
    assert.equal(hit.headers.date, date);
  });

  test('a successful extension method (M-SEARCH) invalidates the URL (RFC 9111 §4.4)', async () => {
    const s = await site({}, (_req, res, n) => res.setHeader('cache-control', 'max-age=60').end(`v${n}`));
    await request(`${s.url}/r`);
    assert.equal((await request(`${s.url}/r`)).body, 'v1');
    await request(`${s.url}/r`, { method: 'M-SEARCH' });
    assert.equal((await request(`${s.url}/r`)).body, 'v3');
  });
});

describe('Range on a hit (RFC 9110 §14)', { timeout: 20_000 }, () => {
  const body = '0123456789';
  const lastModified = 'Mon, 01 Jan 2024 00:00:00 GMT';

  test('a miss stores the full body; hits answer 206 / 416 from it, honouring If-Range', async () => {
    const ranges: Array<string | undefined> = [];
    const s = await site({}, (req, res) => {
      ranges.push(req.headers.range);
      res.setHeader('cache-control', 'max-age=60').setHeader('etag', '"v1"').setHeader('last-modified', lastModified).setHeader('x-a', '1');
      res.end(body);
    });
    const miss = await request(`${s.url}/file`, { headers: { range: 'bytes=2-4' } });
    assert.equal(miss.status, 200);
    assert.equal(miss.body, body);
    assert.deepEqual(ranges, [undefined], 'the origin is asked for the full representation');

    const part = await request(`${s.url}/file`, { headers: { range: 'bytes=0-1' } });
    assert.equal(part.status, 206);
    assert.equal(part.body, '01');
    assert.equal(part.headers['content-range'], 'bytes 0-1/10');
    assert.equal(part.headers['content-length'], '2');
    assert.equal(part.headers['x-a'], '1');
    assert.equal(part.headers['x-cache'], 'HIT');

    assert.equal((await request(`${s.url}/file`, { headers: { range: 'bytes=-3' } })).body, '789');
    const beyond = await request(`${s.url}/file`, { headers: { range: 'bytes=10-' } });
    assert.equal(beyond.status, 416);
    assert.equal(beyond.headers['content-range'], 'bytes */10');

    const same = await request(`${s.url}/file`, { headers: { range: 'bytes=5-', 'if-range': '"v1"' } });
    assert.equal(same.status, 206);
    assert.equal(same.body, '56789');
    assert.equal((await request(`${s.url}/file`, { headers: { range: 'bytes=5-', 'if-range': lastModified } })).status, 206);
    const changed = await request(`${s.url}/file`, { headers: { range: 'bytes=5-', 'if-range': '"v0"' } });
    assert.equal(changed.status, 200);
    assert.equal(changed.body, body);
    assert.equal((await request(`${s.url}/file`, { method: 'HEAD', headers: { range: 'bytes=0-1' } })).status, 200);
    assert.equal(s.renders(), 1);
  });
});

describe('5xx with explicit freshness and a good stored copy', { timeout: 20_000 }, () => {
  test('while stale-on-error can serve the good copy, a 503 with max-age never replaces it', async () => {
    let failing = false;
    const s = await site({ defaultTtl: 0 }, (_req, res, n) => {
      if (failing) {
        res.statusCode = 503;
        res.setHeader('cache-control', 'max-age=60');
        res.end(`down ${n}`);
        return;
      }
      res.setHeader('cache-control', 'max-age=1, stale-if-error=600');
      res.end(`good ${n}`);
    });
    await request(`${s.url}/g`);
    await new Promise((r) => setTimeout(r, 1_100));
    failing = true;
    const stale = await request(`${s.url}/g`);
    assert.equal(stale.status, 200);
    assert.equal(stale.body, 'good 1');
    assert.equal(stale.headers['x-cache'], 'STALE');
    const again = await request(`${s.url}/g`);
    assert.equal(again.body, 'good 1', 'the 503 was not stored over it');
  });
});
