/**
 * One client must not cost everyone: what one request carried never turns a URL into a pass for
 * others (hit-for-miss, not hit-for-pass); a leader's client leaving, a throwing render and a
 * hung render each cost the origin at most what one client would; close() ends even when a
 * background data refresh hangs. Judged on the wire: bodies, statuses, origin render counts.
 */
import assert from 'node:assert/strict';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { describe, test } from 'node:test';
import Koa from 'koa';
import { createCache, type CacheOptions } from '../../src/index.js';
import { closedAfterFile, listen, request, sleep, type Reply } from '../helpers/http.js';

const tracked = closedAfterFile();

type Handler = (req: IncomingMessage, res: ServerResponse, n: number) => unknown;

async function serve(handler: Handler, options: CacheOptions = {}): Promise<{ url: string; renders: () => number; active: () => number; cache: ReturnType<typeof createCache> }> {
  let renders = 0;
  let active = 0;
  const cache = createCache(options);
  tracked.caches.push(cache);
  const server = await listen(
    cache.wrap(async (req, res) => {
      const n = ++renders;
      active++;
      res.once('close', () => active--);
      return handler(req, res, n);
    }),
  );
  tracked.servers.push(server);
  return { url: server.url, renders: () => renders, active: () => active, cache };
}

/** Resolves once `check` holds, polling; fails the test after `ms`. */
async function until(check: () => boolean, what: string, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((r) => (open = r));
  return { wait, open };
}

describe('hit-for-miss: what one request carried does not make a URL a pass for others', () => {
  test("a logged-in user's private, Set-Cookie response (Vary: Cookie) does not stop anonymous clients sharing one entry", async () => {
    const { url, renders } = await serve((req, res) => {
      res.setHeader('vary', 'Cookie');
      if (req.headers.cookie !== undefined) {
        res.setHeader('cache-control', 'private');
        res.setHeader('set-cookie', 'session=1');
        res.end('hello, logged-in user');
      } else {
        res.setHeader('cache-control', 'public, max-age=60');
        res.end('hello, anonymous');
      }
    });
    const user = await request(`${url}/home`, { headers: { cookie: 'session=1' } });
    assert.equal(user.body, 'hello, logged-in user');
    const anonymous: Reply[] = [];
    for (let i = 0; i < 5; i++) anonymous.push(await request(`${url}/home`));
    assert.deepEqual(
      anonymous.map((r) => r.body),
      Array(5).fill('hello, anonymous'),
    );
    assert.deepEqual(
      anonymous.map((r) => r.headers['x-cache']),
      // The first reads PASS (rendered alone, hit-for-miss) and is stored all the same.
      ['PASS', 'HIT', 'HIT', 'HIT', 'HIT'],
    );
    assert.equal(renders(), 2);
  });

  test("a request's own Cache-Control: no-store does not make the URL a pass for others", async () => {
    const { url, renders } = await serve((_req, res) => {
      res.setHeader('cache-control', 'public, max-age=60');
      res.end('page');
    });
    await request(`${url}/p`, { headers: { 'cache-control': 'no-store' } });
    const after = [await request(`${url}/p`), await request(`${url}/p`)];
    assert.deepEqual(
      after.map((r) => r.headers['x-cache']),
      ['MISS', 'HIT'],
    );
    assert.equal(renders(), 2);
  });

  test('requests for a truly uncacheable URL still do not queue behind one another', async () => {
    // Each render after the first holds until ten run at once: only possible if none waits on another.
    const s: { active?: () => number } = {};
    const allRunning = until(() => (s.active?.() ?? 0) >= 10, 'ten renders at once').then(
      () => true,
      () => false,
    );
    const { url, renders, active, cache } = await serve(async (_req, res, n) => {
      if (n > 1) await allRunning;
      res.setHeader('cache-control', 'no-store');
      res.end('fresh every time');
    });
    s.active = active;
    await request(`${url}/live`);
    const replies = await Promise.all(Array.from({ length: 10 }, () => request(`${url}/live`)));
    assert.ok(replies.every((r) => r.body === 'fresh every time'));
    assert.equal(await allRunning, true, 'the ten renders ran at once');
    assert.equal(renders(), 11);
    assert.equal(cache.stats().loadsDeduped, 0);
  });
});

describe('the leader and its waiters', () => {
  test("the leader's client leaves while 20 wait: one render, stored, the waiters served from it", async () => {
    const release = gate();
    const leaderGone = gate();
    const { url, renders, cache } = await serve(async (_req, res) => {
      res.once('close', leaderGone.open);
      await release.wait;
      res.setHeader('cache-control', 'public, max-age=60');
      res.setHeader('content-type', 'text/plain');
      res.write('rendered ');
      res.end('once');
    });
    const leader = http.get(`${url}/left`);
    leader.on('error', () => undefined);
    await until(() => renders() === 1, 'the leader to render');
    const waiters = Array.from({ length: 20 }, () => request(`${url}/left`));
    await until(() => cache.stats().loadsDeduped === 20, '20 waiters');
    leader.destroy();
    await leaderGone.wait;
    release.open();
    const replies = await Promise.all(waiters);
    assert.deepEqual(new Set(replies.map((r) => `${r.status} ${r.body}`)), new Set(['200 rendered once']));
    assert.equal(renders(), 1);
    const later = await request(`${url}/left`);
    assert.equal(later.headers['x-cache'], 'HIT');
    assert.equal(later.body, 'rendered once');
    assert.equal(renders(), 1);
  });

  test("Koa: the leader's client leaves while 5 wait: one render, stored, the waiters served from it", async () => {
    const release = gate();
    const leaderGone = gate();
    let renders = 0;
    const cache = createCache();
    tracked.caches.push(cache);
    const app = new Koa();
    app.use(cache.koa());
    app.use(async (ctx) => {
      renders++;
      ctx.res.once('close', leaderGone.open);
      await release.wait;
      ctx.set('cache-control', 'public, max-age=60');
      ctx.body = { rendered: renders };
    });
    const server = await listen(app.callback());
    tracked.servers.push(server);
    const leader = http.get(`${server.url}/koa-left`);
    leader.on('error', () => undefined);
    await until(() => renders === 1, 'the leader to render');
    const waiters = Array.from({ length: 5 }, () => request(`${server.url}/koa-left`));
    await until(() => cache.stats().loadsDeduped === 5, '5 waiters');
    leader.destroy();
    await leaderGone.wait;
    release.open();
    const replies = await Promise.all(waiters);
    assert.deepEqual(new Set(replies.map((r) => `${r.status} ${r.body}`)), new Set(['200 {"rendered":1}']));
    assert.equal(renders, 1);
  });

  test('a cold key whose render throws, 100 waiters: they share the failure, the origin sees at most 2 renders', async () => {
    const release = gate();
    const { url, renders, cache } = await serve(async () => {
      await release.wait;
      throw new Error('origin down');
    });
    const leader = request(`${url}/boom`);
    await until(() => renders() === 1, 'the leader to render');
    const waiters = Array.from({ length: 100 }, () => request(`${url}/boom`));
    await until(() => cache.stats().loadsDeduped === 100, '100 waiters');
    release.open();
    const replies = await Promise.all([leader, ...waiters]);
    assert.ok(replies.every((r) => r.status >= 500), `statuses ${[...new Set(replies.map((r) => r.status))].join(',')}`);
    assert.ok(renders() <= 2, `${renders()} renders`);
  });

  test('originTimeout with no stale copy: 504 to the client and its waiters at the timeout, the late render is stored', async () => {
    const release = gate();
    const { url, renders } = await serve(
      async (_req, res) => {
        await release.wait;
        res.setHeader('cache-control', 'public, max-age=60');
        res.end('slow but good');
      },
      { originTimeout: 300 },
    );
    // Without the fix nobody answers before the render does: let it end after 4 s at the latest.
    setTimeout(release.open, 4_000).unref();
    const started = Date.now();
    const replies = await Promise.all(Array.from({ length: 20 }, () => request(`${url}/slow`)));
    const took = Date.now() - started;
    assert.deepEqual(new Set(replies.map((r) => r.status)), new Set([504]));
    assert.ok(took < 3_500, `answered after ${took} ms`);
    assert.equal(renders(), 1);
    release.open();
    let later = await request(`${url}/slow`);
    for (let i = 0; i < 50 && later.headers['x-cache'] !== 'HIT'; i++) (await sleep(20), (later = await request(`${url}/slow`)));
    assert.equal(later.headers['x-cache'], 'HIT');
    assert.equal(later.body, 'slow but good');
    assert.equal(renders(), 1);
  });
});

describe('close()', () => {
  test('close({ timeout }) abandons a hung background data refresh instead of never returning', async () => {
    const cache = createCache();
    let calls = 0;
    const loader = (): Promise<string> => (++calls === 1 ? Promise.resolve('v1') : new Promise<string>(() => undefined));
    assert.equal(await cache.data.get('k', loader, { ttl: 10, staleWhileRevalidate: 60_000 }), 'v1');
    await sleep(30);
    // Stale: answered at once while one background refresh runs, and that refresh hangs.
    assert.equal(await cache.data.get('k', loader, { ttl: 10, staleWhileRevalidate: 60_000 }), 'v1');
    assert.equal(calls, 2);
    const started = Date.now();
    const closed = await Promise.race([cache.close({ timeout: 200 }).then(() => 'closed'), sleep(3_000).then(() => 'still waiting')]);
    assert.equal(closed, 'closed');
    assert.ok(Date.now() - started < 2_000);
  });
});

describe('originTimeout through the fetch adapter', () => {
  test('a WHATWG handler with no headers after originTimeout: 504 at the timeout, not a hang', async () => {
    const release = gate();
    const cache = createCache({ originTimeout: 300 });
    tracked.caches.push(cache);
    const handler = cache.fetch(async () => {
      await release.wait;
      return new Response('late', { headers: { 'cache-control': 'public, max-age=60' } });
    });
    setTimeout(release.open, 4_000).unref();
    const started = Date.now();
    const response = await handler(new Request('http://site.example/fetch-slow'));
    assert.equal(response.status, 504);
    assert.ok(Date.now() - started < 3_500, `answered after ${Date.now() - started} ms`);
    release.open();
  });
});
