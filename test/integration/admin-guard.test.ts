/**
 * The admin routes (flush endpoint, PURGE, stats, console) are safe by default: a request that
 * came through a proxy is never trusted for its (loopback) socket address, and a Host that is not
 * an IP address, localhost or one of flush.hosts is refused (DNS rebinding). Regression tests of
 * issue 19: through nginx on the same host anyone could flush; Host and Origin both set to
 * `rebind.evil.example:PORT` read the stats and applied a hard flush.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createCache, type CacheOptions } from '../../src/index.js';
import { hostName, isAdminHost } from '../../src/invalidation/admin-guard.js';
import { closedAfterFile, listen, request, type Reply } from '../helpers/http.js';

const tracked = closedAfterFile();
const TOKEN = 'admin-guard-token-0123456789';
const JSON_TYPE = { 'content-type': 'application/json' };

/** A cached site (the app's port answers the admin routes) and its console on a port of its own. */
async function site(options: CacheOptions = {}) {
  let renders = 0;
  const cache = createCache(options);
  tracked.caches.push(cache);
  const app = await listen(
    cache.wrap((_req, res) => {
      renders++;
      res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'public, max-age=60' });
      res.end(`page ${renders}`);
    }),
  );
  const ops = await listen(cache.consoleHandler());
  tracked.servers.push(app, ops);
  /** Every admin route once, with `headers` (a flush endpoint JSON flush is hard: it removes /a). */
  const everyRoute = async (headers: Record<string, string>): Promise<Record<string, Reply>> => ({
    flush: await request(`${app.url}/dispatcher/invalidate.cache`, { method: 'POST', headers: { ...JSON_TYPE, ...headers }, body: '{"paths":["/a"],"hard":true}' }),
    purge: await request(`${app.url}/a`, { method: 'PURGE', headers }),
    stats: await request(`${app.url}/_stratacache/stats`, { headers }),
    console: await request(`${ops.url}/stats.json`, { headers }),
    consoleFlush: await request(`${ops.url}/flush`, { method: 'POST', headers: { ...JSON_TYPE, ...headers }, body: '{"paths":["/a"],"hard":true}' }),
  });
  return { cache, app, ops, everyRoute, renders: () => renders };
}

/** Every route answered 403 with `reason`; a missing token makes the console ask a browser to log in (401) instead. */
function assertRefused(replies: Record<string, Reply>, reason: RegExp, label: string): void {
  for (const [route, r] of Object.entries(replies)) {
    if (route.startsWith('console') && r.status === 401 && /token/.test(reason.source)) {
      assert.match(String(r.headers['www-authenticate']), /^Basic /, `${label}: ${route}`);
      continue;
    }
    assert.equal(r.status, 403, `${label}: ${route} answered ${r.status} ${r.body}`);
    assert.match(r.body, reason, `${label}: ${route}`);
  }
}

function assertAllowed(replies: Record<string, Reply>, label: string): void {
  for (const [route, r] of Object.entries(replies)) assert.equal(r.status, 200, `${label}: ${route} answered ${r.status} ${r.body}`);
}

describe('a request that came through a proxy needs the token', () => {
  test('Forwarded, X-Forwarded-For, X-Real-IP or Via on a loopback connection: 403 without a token configured, nothing flushed', async () => {
    const s = await site();
    await request(`${s.app.url}/a`);
    const proxyHeaders: Array<Record<string, string>> = [{ forwarded: 'for=203.0.113.7' }, { 'x-forwarded-for': '203.0.113.7' }, { 'x-real-ip': '203.0.113.7' }, { via: '1.1 nginx' }];
    for (const header of proxyHeaders) {
      assertRefused(await s.everyRoute(header), /through a proxy needs a token \(set flush\.token\)/, JSON.stringify(header));
    }
    assert.equal(s.cache.stats().invalidations, 0);
    assert.equal((await request(`${s.app.url}/a`)).headers['x-cache'], 'HIT');
    // Direct loopback without proxy headers is trusted, as documented.
    assertAllowed(await s.everyRoute({}), 'direct loopback');
    assert.equal(s.cache.stats().invalidations, 3);
  });

  test('with a token: proxied requests without it get 403, with it 200', async () => {
    const s = await site({ flush: { token: TOKEN } });
    const proxied = { 'x-forwarded-for': '203.0.113.7', via: '1.1 nginx' };
    assertRefused(await s.everyRoute(proxied), /missing or wrong token/, 'proxied, no token');
    assertAllowed(await s.everyRoute({ ...proxied, authorization: `Bearer ${TOKEN}` }), 'proxied with token');
  });

  test('flush.trustProxy: a proxy that adds no header is known by its address', async () => {
    const s = await site({ flush: { trustProxy: ['127.0.0.1'] } });
    assertRefused(await s.everyRoute({}), /through a proxy needs a token/, 'from the proxy address');
    const withToken = await site({ flush: { trustProxy: ['127.0.0.0/8'], token: TOKEN } });
    assertAllowed(await withToken.everyRoute({ authorization: `Bearer ${TOKEN}` }), 'proxy address with token');
  });
});

describe('DNS rebinding: only admin hosts reach the admin routes', () => {
  test('Host and Origin both rebind.evil.example:PORT: stats, flush, PURGE and console refused, nothing flushed', async () => {
    const s = await site();
    await request(`${s.app.url}/a`);
    const evil = `rebind.evil.example:${s.app.port}`;
    assertRefused(await s.everyRoute({ host: evil, origin: `http://${evil}` }), /not an admin host .*flush\.hosts/, 'rebinding');
    assertRefused(await s.everyRoute({ host: evil }), /not an admin host/, 'rebinding without Origin');
    // The token does not make another name an admin host either.
    const guarded = await site({ flush: { token: TOKEN } });
    assertRefused(await guarded.everyRoute({ host: evil, authorization: `Bearer ${TOKEN}` }), /not an admin host/, 'rebinding with token');
    assert.equal(s.cache.stats().invalidations, 0);
    assert.equal((await request(`${s.app.url}/a`)).headers['x-cache'], 'HIT');
  });

  test('IP literals, localhost (any case, trailing dot) and the names in flush.hosts are admin hosts', async () => {
    const s = await site({ flush: { hosts: ['cache.internal'] } });
    for (const host of [`127.0.0.1:${s.app.port}`, `localhost:${s.app.port}`, 'LOCALHOST.', '[::1]:80', 'Cache.Internal:8080', 'cache.internal.']) {
      const r = await request(`${s.app.url}/_stratacache/stats`, { headers: { host } });
      assert.equal(r.status, 200, host);
    }
    assert.equal((await request(`${s.app.url}/_stratacache/stats`, { headers: { host: 'other.internal' } })).status, 403);
  });

  test('an Origin other than the Host is refused on every route (not only the console form)', async () => {
    const s = await site();
    assertRefused(await s.everyRoute({ origin: 'http://127.0.0.2:1' }), /cross-origin/, 'cross-origin');
    assertRefused(await s.everyRoute({ origin: 'null' }), /cross-origin/, 'opaque origin');
    assert.equal(s.cache.stats().invalidations, 0);
  });

  test('the pure parts: hostName and isAdminHost', () => {
    assert.equal(hostName('Site.Test.:8080'), 'site.test');
    assert.equal(hostName('[::1]:9000'), '::1');
    assert.equal(hostName(''), undefined);
    const none = new Set<string>();
    assert.ok(isAdminHost(undefined, none));
    assert.ok(isAdminHost('10.1.2.3:80', none));
    assert.ok(!isAdminHost('127.0.0.1.nip.io', none));
    assert.ok(!isAdminHost('localhost.evil.example', none));
    assert.ok(!isAdminHost(':80', none));
  });
});

describe('cache.adminHandler(): the admin routes on a port of their own', () => {
  test('answers flush, PURGE and stats behind the same guard; 404 for anything else', async () => {
    const s = await site({ flush: { token: TOKEN } });
    const admin = await listen(s.cache.adminHandler());
    tracked.servers.push(admin);
    const auth = { authorization: `Bearer ${TOKEN}` };
    await request(`${s.app.url}/a`);
    assert.equal((await request(`${admin.url}/_stratacache/stats`)).status, 403);
    assert.equal((await request(`${admin.url}/_stratacache/stats`, { headers: auth })).status, 200);
    assert.equal((await request(`${admin.url}/a`, { method: 'PURGE', headers: auth })).status, 200);
    assert.equal((await request(`${s.app.url}/a`)).headers['x-cache'], 'MISS');
    assert.equal((await request(`${admin.url}/dispatcher/invalidate.cache`, { method: 'POST', headers: { ...JSON_TYPE, ...auth }, body: '{"paths":["/a"]}' })).status, 200);
    const other = await request(`${admin.url}/a`, { headers: auth });
    assert.equal(other.status, 404);
    assert.equal(s.renders(), 2);
    assert.throws(() => createCache({ flush: false }).adminHandler(), /needs the flush endpoint/);
  });
});
