/**
 * Field test: `stratacache serve` behind a real nginx on the same host, as people deploy it
 * (nginx terminates the public side and proxies to the cache on loopback). Through nginx, the
 * flush endpoint, PURGE, stats and the console are refused without the token and work with it;
 * a direct loopback request without proxy headers still works without a token (as documented);
 * and by default the site's port does not serve the admin routes at all.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { serveCli, type ServeProcess } from '../helpers/cli.js';
import { closedAfterFile, listen, request, type Reply } from '../helpers/http.js';
import { startNginx } from '../helpers/nginx.js';

const tracked = closedAfterFile();
const TOKEN = 'field-token-0123456789abcdef';
const BEARER = { authorization: `Bearer ${TOKEN}` };

/** nginx's usual reverse proxy block: the client's Host and address passed on. */
const proxyTo = (listen: string, target: string): string => `
  server {
    listen ${listen};
    location / {
      proxy_pass ${target};
      proxy_http_version 1.1;
      proxy_set_header Host $host;
      proxy_set_header X-Real-IP $remote_addr;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }
  }`;

/** nginx's minimal block: `proxy_pass` alone adds no proxy header. */
const bareProxyTo = (listen: string, target: string): string => `
  server {
    listen ${listen};
    location / { proxy_pass ${target}; }
  }`;

async function upstream() {
  const seen: string[] = [];
  const origin = await listen((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'public, max-age=60' });
    res.end(`page ${req.url}`);
  });
  tracked.servers.push(origin);
  return { url: origin.url, seen };
}

/** Every admin route once against a site base URL and an admin base URL (the console is on the admin address). */
async function everyRoute(site: string, admin: string, headers: Record<string, string> = {}): Promise<Record<string, Reply>> {
  return {
    flush: await request(`${site}/dispatcher/invalidate.cache`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: '{"paths":["/a"]}' }),
    purge: await request(`${site}/a`, { method: 'PURGE', headers }),
    stats: await request(`${site}/_stratacache/stats`, { headers }),
    console: await request(`${admin}/console/stats.json`, { headers }),
    adminFlush: await request(`${admin}/dispatcher/invalidate.cache`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: '{"paths":["/a"]}' }),
  };
}

function statuses(replies: Record<string, Reply>): Record<string, number> {
  return Object.fromEntries(Object.entries(replies).map(([k, r]) => [k, r.status]));
}

async function stop(p: ServeProcess): Promise<void> {
  p.child.kill('SIGTERM');
  assert.equal(await p.exited, 0);
}

describe('stratacache serve behind nginx on the same host', () => {
  test('no token: through nginx every admin route is refused; direct loopback works', { timeout: 120_000 }, async () => {
    const up = await upstream();
    const cache = await serveCli(['--upstream', up.url, '--admin', '127.0.0.1:0', '--admin-on-main']);
    const nginx = await startNginx(2, ([site, admin]) => proxyTo(site!, cache.site) + proxyTo(admin!, cache.admin!));
    const [viaSite, viaAdmin] = nginx.urls as [string, string];
    assert.equal((await request(`${viaSite}/a`)).body, 'page /a');
    assert.equal((await request(`${viaSite}/a`)).headers['x-cache'], 'HIT');

    const refused = await everyRoute(viaSite, viaAdmin);
    assert.deepEqual(statuses(refused), { flush: 403, purge: 403, stats: 403, console: 403, adminFlush: 403 }, nginx.errors());
    for (const r of Object.values(refused)) assert.match(r.body, /through a proxy needs a token/);
    assert.equal((await request(`${viaSite}/a`)).headers['x-cache'], 'HIT');
    assert.ok(!up.seen.some((s) => s.startsWith('PURGE')), 'PURGE never reaches the upstream');

    // Direct, on loopback, without proxy headers: trusted without a token (docs/security.md).
    assert.deepEqual(statuses(await everyRoute(cache.site, cache.admin!)), { flush: 200, purge: 200, stats: 200, console: 200, adminFlush: 200 });
    await stop(cache);
  });

  test('with a token: through nginx refused without it, accepted with it (Bearer, and Basic for the console)', { timeout: 120_000 }, async () => {
    const up = await upstream();
    const cache = await serveCli(['--upstream', up.url, '--admin', '127.0.0.1:0', '--admin-on-main', '--flush-token', TOKEN]);
    const nginx = await startNginx(2, ([site, admin]) => proxyTo(site!, cache.site) + proxyTo(admin!, cache.admin!));
    const [viaSite, viaAdmin] = nginx.urls as [string, string];
    await request(`${viaSite}/a`);
    assert.equal((await request(`${viaSite}/a`)).headers['x-cache'], 'HIT');

    const refused = statuses(await everyRoute(viaSite, viaAdmin));
    // The console asks a browser to log in (401); every other route says 403.
    assert.deepEqual(refused, { flush: 403, purge: 403, stats: 403, console: 401, adminFlush: 403 }, nginx.errors());
    assert.equal((await request(`${viaSite}/a`)).headers['x-cache'], 'HIT');

    const accepted = await everyRoute(viaSite, viaAdmin, BEARER);
    assert.deepEqual(statuses(accepted), { flush: 200, purge: 200, stats: 200, console: 200, adminFlush: 200 }, nginx.errors());
    assert.match(accepted.purge!.body, /^Purged \/a/);
    const login = await request(`${viaAdmin}/console/`, { headers: { authorization: `Basic ${Buffer.from(`ops:${TOKEN}`).toString('base64')}` } });
    assert.equal(login.status, 200);
    assert.match(login.body, /stratacache console/);
    assert.equal((await request(`${viaSite}/a`)).headers['x-cache'], 'MISS');

    // DNS rebinding through nginx: the token does not make another name an admin host.
    const rebound = await request(`${viaSite}/_stratacache/stats`, { headers: { ...BEARER, host: 'rebind.evil.example', origin: 'http://rebind.evil.example' } });
    assert.equal(rebound.status, 403);
    assert.match(rebound.body, /not an admin host/);
    await stop(cache);
  });

  test('by default the site serves no admin route: a bare nginx (no proxy headers) reaches none of them', { timeout: 120_000 }, async () => {
    const up = await upstream();
    const cache = await serveCli(['--upstream', up.url, '--admin', '127.0.0.1:0']);
    const nginx = await startNginx(1, ([site]) => bareProxyTo(site!, cache.site));
    const [viaSite] = nginx.urls as [string];
    await request(`${viaSite}/a`);
    const flush = await request(`${viaSite}/dispatcher/invalidate.cache`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"paths":["/a"]}' });
    const purge = await request(`${viaSite}/a`, { method: 'PURGE' });
    const stats = await request(`${viaSite}/_stratacache/stats`);
    assert.deepEqual([flush.status, purge.status, stats.status], [404, 404, 404]);
    assert.match(stats.body, /served on the --admin address/);
    assert.equal((await request(`${viaSite}/a`)).headers['x-cache'], 'HIT');
    assert.ok(!up.seen.some((s) => s.startsWith('PURGE')), 'PURGE never reaches the upstream');
    // The operator's own address (loopback, direct) has them.
    assert.equal((await request(`${cache.admin!}/console/stats.json`)).status, 200);
    assert.equal((await request(`${cache.admin!}/a`, { method: 'PURGE' })).status, 200);
    assert.equal((await request(`${viaSite}/a`)).headers['x-cache'], 'MISS');
    await stop(cache);
  });
});
