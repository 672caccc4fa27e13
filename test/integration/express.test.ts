/**
 * Express 5: the shared adapter scenarios with `app.use(cache.middleware())`, and again with
 * `http.createServer(cache.wrap(app))` (hits answered before Express runs), plus Express
 * specifics: its own ETag/freshness handling, res.json, and middleware before the cache.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { describe, test } from 'node:test';
import express, { type Express } from 'express';
import { createCache, type StrataCache } from '../../src/index.js';
import { adapterSuite, assertHit, assertStatus } from '../helpers/adapter-suite.js';
import { listen, request } from '../helpers/http.js';
import { OriginError, preparePlan, type Origin } from '../helpers/origin.js';

/** An Express app whose last middleware executes the origin's plans the Express way. */
function originApp(origin: Origin, before?: (app: Express) => void): Express {
  const app = express();
  before?.(app);
  app.use(async (req, res) => {
    const url = req.url;
    const plan = origin.begin(req);
    try {
      await preparePlan(plan);
      res.status(plan.status ?? 200);
      for (const [name, value] of Object.entries(plan.headers ?? {})) res.set(name, value);
      if (plan.chunks !== undefined) {
        for (const chunk of plan.chunks) {
          res.write(chunk);
          if (plan.fail === 'after') throw new OriginError('after the first chunk');
          await new Promise((r) => setImmediate(r));
        }
        res.end();
      } else res.send(plan.body ?? '');
    } finally {
      origin.end(url);
    }
  });
  return app;
}

/** Express's final handler logs errors to stderr outside tests only; keep test output clean. */
process.env.NODE_ENV = 'test';

adapterSuite('Express middleware', (cache: StrataCache, origin: Origin) => listen(originApp(origin, (app) => app.use(cache.middleware()))), { answersThrows: true });

adapterSuite('Express behind wrap(app)', (cache: StrataCache, origin: Origin) => listen(http.createServer(cache.wrap(originApp(origin)))), { answersThrows: true });

describe('Express specifics', { timeout: 15_000 }, () => {
  test('http.createServer(cache.wrap(expressApp)): hits never reach Express', async (t) => {
    const cache = createCache();
    let expressRequests = 0;
    const app = express();
    app.use((_req, _res, next) => {
      expressRequests++;
      next();
    });
    app.get('/products/:id', (req, res) => {
      res.set('cache-control', 'max-age=60').json({ id: req.params.id, name: `product ${req.params.id}` });
    });
    const running = await listen(http.createServer(cache.wrap(app)));
    t.after(async () => {
      await running.close();
      await cache.close();
    });
    const first = await request(`${running.url}/products/7`);
    assert.equal(first.status, 200);
    assert.deepEqual(JSON.parse(first.body), { id: '7', name: 'product 7' });
    assertStatus(first, 'MISS');
    const hit = await request(`${running.url}/products/7`);
    assertHit(hit, first.body);
    assert.match(String(hit.headers['content-type']), /^application\/json/);
    assert.equal(expressRequests, 1);
    // Express's own routing still answers what the cache passes (404 is stored by default).
    const missing = await request(`${running.url}/nothing`);
    assert.equal(missing.status, 404);
    assert.equal(expressRequests, 2);
  });

  test("Express's generated ETag answers later conditional requests from the cache", async (t) => {
    const cache = createCache();
    let renders = 0;
    const app = express();
    app.use(cache.middleware());
    app.get('/etag', (_req, res) => {
      renders++;
      res.set('cache-control', 'max-age=60').send('express body with an etag');
    });
    const running = await listen(app);
    t.after(async () => {
      await running.close();
      await cache.close();
    });
    const first = await request(`${running.url}/etag`);
    const etag = String(first.headers.etag);
    assert.match(etag, /^W\/"/);
    const conditional = await request(`${running.url}/etag`, { headers: { 'if-none-match': etag } });
    assert.equal(conditional.status, 304);
    assertStatus(conditional, 'HIT');
    assert.equal(conditional.body, '');
    assert.equal(renders, 1);
  });

  test('middleware before the cache runs on hits, and its per-request headers are not replayed', async (t) => {
    const cache = createCache();
    let renders = 0;
    let before = 0;
    const app = express();
    app.use((req, res, next) => {
      before++;
      res.set('x-request-id', `req-${before}`);
      res.set('access-control-allow-origin', String(req.headers.origin ?? '*'));
      res.set('cache-control', 'no-store');
      next();
    });
    app.use(cache.middleware());
    app.get('/with-before', (_req, res) => {
      renders++;
      // Overrides the earlier default: the rendered value is what is stored.
      res.set('cache-control', 'max-age=60').send(`rendered ${renders}`);
    });
    const running = await listen(app);
    t.after(async () => {
      await running.close();
      await cache.close();
    });
    const first = await request(`${running.url}/with-before`, { headers: { origin: 'https://a.example' } });
    assert.equal(first.headers['x-request-id'], 'req-1');
    const hit = await request(`${running.url}/with-before`, { headers: { origin: 'https://b.example' } });
    assertHit(hit, 'rendered 1');
    assert.equal(hit.headers['x-request-id'], 'req-2');
    assert.equal(hit.headers['access-control-allow-origin'], 'https://b.example');
    assert.equal(hit.headers['cache-control'], 'max-age=60');
    assert.equal(before, 2);
    assert.equal(renders, 1);
  });
});
