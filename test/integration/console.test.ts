/**
 * The console's HTTP surface without a browser: the flush endpoint's guard in front of every
 * route (allowed clients, token as Bearer or as a browser's Basic login), cross-origin flushes
 * refused, the JSON it polls, relative URLs under an Express mount, and the files it serves.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
import express from 'express';
import { createCache } from '../../src/index.js';
import { closedAfterFile, listen, request } from '../helpers/http.js';

const tracked = closedAfterFile();
const TOKEN = 'console-token-0123456789abcdef';
const basic = (password: string): string => `Basic ${Buffer.from(`ops:${password}`).toString('base64')}`;

test('every console route is behind the flush guard; the token works as Bearer or Basic password', async () => {
  const cache = createCache({ flush: { token: TOKEN } });
  tracked.caches.push(cache);
  const ops = await listen(cache.consoleHandler());
  tracked.servers.push(ops);
  for (const path of ['/', '/console.js', '/console.css', '/stats.json']) {
    const refused = await request(`${ops.url}${path}`);
    assert.equal(refused.status, 401, path);
    assert.match(String(refused.headers['www-authenticate']), /^Basic realm="stratacache console"/);
    assert.equal((await request(`${ops.url}${path}`, { headers: { authorization: basic('wrong') } })).status, 401, path);
  }
  const flushRefused = await request(`${ops.url}/flush`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"paths":["/a"]}' });
  assert.equal(flushRefused.status, 401);
  assert.equal(cache.stats().invalidations, 0);
  const page = await request(`${ops.url}/`, { headers: { authorization: basic(TOKEN) } });
  assert.equal(page.status, 200);
  assert.match(page.headers['content-type'] ?? '', /^text\/html/);
  assert.match(page.body, /<script src="console.js"><\/script>/);
  assert.match(String(page.headers['content-security-policy']), /default-src 'none'/);
  const js = await request(`${ops.url}/console.js`, { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(js.status, 200);
  assert.match(js.headers['content-type'] ?? '', /^text\/javascript/);
  const state = JSON.parse((await request(`${ops.url}/stats.json`, { headers: { authorization: basic(TOKEN) } })).body);
  assert.equal(state.name, 'stratacache');
  assert.equal(state.stats.gets, 0);
  assert.deepEqual(state.tiers.map((t: { tier: string }) => t.tier), ['memory', 'data']);
  assert.ok(state.samples.length >= 2);
  // The flush endpoint itself takes the Basic form of the token too (same guard).
  const ok = await request(`${ops.url}/flush`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: basic(TOKEN) }, body: '{"paths":["/a"]}' });
  assert.equal(ok.status, 200);
  assert.equal(JSON.parse(ok.body).ok, true);
  assert.equal(cache.stats().invalidations, 1);
  const events = JSON.parse((await request(`${ops.url}/stats.json`, { headers: { authorization: basic(TOKEN) } })).body).events;
  assert.deepEqual(events.map((e: { kind: string; outcome: string; target: string }) => [e.kind, e.outcome, e.target]), [['invalidation', 'soft', '/a']]);
  assert.equal((await request(`${ops.url}/nope`, { headers: { authorization: basic(TOKEN) } })).status, 404);
});

test('a client outside allowedClients gets 403, and a flush from another origin is refused', async () => {
  const outside = createCache({ flush: { allowedClients: ['10.0.0.0/8'] } });
  tracked.caches.push(outside);
  const far = await listen(outside.consoleHandler());
  tracked.servers.push(far);
  assert.equal((await request(`${far.url}/`)).status, 403);
  assert.equal((await request(`${far.url}/stats.json`)).status, 403);

  const cache = createCache();
  tracked.caches.push(cache);
  const ops = await listen(cache.consoleHandler());
  tracked.servers.push(ops);
  const json = { 'content-type': 'application/json' };
  const cross = await request(`${ops.url}/flush`, { method: 'POST', headers: { ...json, origin: 'http://evil.example' }, body: '{"paths":["/a"]}' });
  assert.equal(cross.status, 403);
  assert.equal(cache.stats().invalidations, 0);
  const same = await request(`${ops.url}/flush`, { method: 'POST', headers: { ...json, origin: ops.url }, body: '{"paths":["/a"],"hard":true}' });
  assert.equal(same.status, 200);
  assert.equal(cache.stats().invalidations, 1);
  assert.throws(() => createCache({ flush: false }).consoleHandler(), /needs the flush endpoint: options.flush is false/);
});

test('mounted under a path in Express, the page redirects to its trailing slash and passes on other URLs', async () => {
  const cache = createCache();
  tracked.caches.push(cache);
  const app = express();
  app.use('/ops', cache.consoleHandler());
  app.use('/metrics', cache.metricsHandler());
  app.get('/hello', (_req, res) => void res.send('app'));
  const srv = await listen(http.createServer(app));
  tracked.servers.push(srv);
  const bare = await request(`${srv.url}/ops`);
  assert.equal(bare.status, 308);
  assert.equal(bare.headers.location, '/ops/');
  assert.equal((await request(`${srv.url}/ops/`)).status, 200);
  assert.equal((await request(`${srv.url}/ops/stats.json`)).status, 200);
  assert.equal((await request(`${srv.url}/hello`)).body, 'app');
  assert.match((await request(`${srv.url}/metrics`)).body, /^# HELP stratacache_requests_total /);
});
