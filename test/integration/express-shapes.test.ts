/**
 * `http.createServer(cache.wrap(expressApp))` once the cache has learned the shape of Express's
 * renders (src/shapes.ts: from the second render on, the properties Express adds are created
 * before it runs): what every client of a render sees is what Express alone sends, byte for byte
 * but the cache's own headers, for JSON with params, locals, query and a wrapped res.json, a
 * sub-router, a stream, a 404, a throw before and after writing, and a burst of concurrent
 * renders; each URL renders once.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import { createCache, type StrataCache } from '../../src/index.js';
import { assertHit, attempt } from '../helpers/adapter-suite.js';
import { listen, request, type Reply, type Running } from '../helpers/http.js';

/** Express's final handler logs errors to stderr outside tests only; keep test output clean. */
process.env.NODE_ENV = 'test';

/** Headers that differ between two responses by design: the cache's own, and the clock's. */
const VOLATILE = new Set(['x-cache', 'cache-status', 'age', 'date', 'keep-alive', 'connection']);

function comparable(reply: Reply): { status: number; headers: Record<string, unknown>; body: string } {
  const headers = Object.fromEntries(Object.entries(reply.headers).filter(([name]) => !VOLATILE.has(name)));
  return { status: reply.status, headers, body: reply.body };
}

/** The app; `renders` counts what reached it, by path. */
function buildApp(renders: Map<string, number>): Express {
  const app = express();
  app.use((req: Request, res: Response, next: NextFunction) => {
    renders.set(req.path, (renders.get(req.path) ?? 0) + 1);
    res.locals.served = 'by express';
    // A logging middleware's pattern: Express's res.json wrapped in place.
    const json = res.json;
    res.json = function wrapped(this: Response, body: unknown) {
      this.set('x-wrapped', 'yes');
      return json.call(this, body);
    };
    next();
  });
  app.get('/item/:id', (req, res) => {
    res.set('cache-control', 'max-age=60').json({ id: req.params.id, q: req.query.q ?? null, locals: res.locals.served, own: Object.hasOwn(req, 'route') });
  });
  const sub = express.Router();
  sub.get('/:name', (req, res) => {
    res.set('cache-control', 'max-age=60').type('text/plain').send(`${req.baseUrl} ${req.originalUrl} ${req.params.name}`);
  });
  app.use('/sub', sub);
  app.get('/stream/:n', async (req, res) => {
    res.set('cache-control', 'max-age=60').type('text/plain');
    for (let i = 0; i < 3; i++) {
      res.write(`part ${i} of ${req.params.n};`);
      await new Promise((r) => setImmediate(r));
    }
    res.end();
  });
  app.get('/boom/:n', () => {
    throw new Error('before writing');
  });
  app.get('/cut/:n', async (_req, res) => {
    res.set('cache-control', 'max-age=60').type('text/plain');
    res.write('first part, ');
    await new Promise((r) => setImmediate(r));
    res.destroy(new Error('after writing'));
  });
  return app;
}

describe('Express behind wrap(app), after the cache learned its shapes', { timeout: 30_000 }, () => {
  const plainRenders = new Map<string, number>();
  const cachedRenders = new Map<string, number>();
  let plain: Running;
  let cached: Running;
  let cache: StrataCache;

  before(async () => {
    cache = createCache();
    plain = await listen(http.createServer(buildApp(plainRenders)));
    cached = await listen(http.createServer(cache.wrap(buildApp(cachedRenders))));
    // The first renders teach the cache the shapes; every request below runs with them created early.
    for (let i = 0; i < 3; i++) assert.equal((await request(`${cached.url}/item/warm-${i}`)).status, 200);
  });
  after(async () => {
    await plain.close();
    await cached.close();
    await cache.close();
  });

  /** Asks both servers for `path`: the first answer through the cache must be Express's own, the second a hit. */
  async function same(path: string): Promise<Reply> {
    const expected = await request(`${plain.url}${path}`);
    const first = await request(`${cached.url}${path}`);
    assert.deepEqual(comparable(first), comparable(expected), path);
    assert.equal(first.headers['x-cache'], 'MISS', path);
    return first;
  }

  test('JSON with params, query and locals: the same response, rendered once, then hits', async () => {
    for (const id of ['1', '2', '3']) {
      const path = `/item/${id}?q=x${id}`;
      const first = await same(path);
      assert.deepEqual(JSON.parse(first.body), { id, q: `x${id}`, locals: 'by express', own: true });
      assert.equal(first.headers['x-wrapped'], 'yes');
      assertHit(await request(`${cached.url}${path}`), first.body);
    }
    assert.equal(cachedRenders.get('/item/2'), 1);
  });

  test('a sub-router sees its baseUrl and originalUrl', async () => {
    const first = await same('/sub/leaf');
    assert.equal(first.body, '/sub /sub/leaf leaf');
    assertHit(await request(`${cached.url}/sub/leaf`), first.body);
    assert.equal(cachedRenders.get('/sub/leaf'), 1);
  });

  test('a streamed response arrives whole and chunked, and is stored', async () => {
    for (const n of ['a', 'b']) {
      const first = await same(`/stream/${n}`);
      assert.equal(first.body, `part 0 of ${n};part 1 of ${n};part 2 of ${n};`);
      assert.equal(first.headers['transfer-encoding'], 'chunked');
      assertHit(await request(`${cached.url}/stream/${n}`), first.body);
      assert.equal(cachedRenders.get(`/stream/${n}`), 1);
    }
  });

  test("Express's 404 page is the same and stored", async () => {
    const first = await same('/nothing/here');
    assert.equal(first.status, 404);
    const again = await request(`${cached.url}/nothing/here`);
    assert.equal(again.status, 404);
    assert.equal(again.body, first.body);
    assert.equal(cachedRenders.get('/nothing/here'), 1);
  });

  test('a throw before writing: Express answers 500, nothing stored', async () => {
    const first = await same('/boom/1');
    assert.equal(first.status, 500);
    const second = await request(`${cached.url}/boom/1`);
    assert.equal(second.status, 500);
    assert.notEqual(second.headers['x-cache'], 'HIT');
    assert.equal(cachedRenders.get('/boom/1'), 2);
  });

  test('a throw after writing: the client sees a cut response, nothing stored', async () => {
    for (let i = 0; i < 2; i++) {
      const outcome = await attempt(`${cached.url}/cut/1`);
      if (!(outcome instanceof Error)) assert.notEqual(outcome.headers['x-cache'], 'HIT');
    }
    assert.equal(cachedRenders.get('/cut/1'), 2);
  });

  test('a burst of concurrent renders: every URL rendered once, every client its own body', async () => {
    const paths = Array.from({ length: 20 }, (_, i) => `/item/burst-${i}`);
    const replies = await Promise.all(paths.flatMap((p) => [request(`${cached.url}${p}`), request(`${cached.url}${p}`)]));
    paths.forEach((p, i) => {
      const id = `burst-${i}`;
      for (const reply of [replies[2 * i]!, replies[2 * i + 1]!]) {
        assert.equal(reply.status, 200);
        assert.deepEqual(JSON.parse(reply.body), { id, q: null, locals: 'by express', own: true });
      }
      assert.equal(cachedRenders.get(p), 1, p);
    });
  });
});
