/**
 * Fastify 5 with `app.register(cache.fastify())`: the shared adapter scenarios, plus every kind of
 * body a route sends (string, Buffer, stream, JSON serialized by Fastify), encapsulation (the
 * plugin registered in a scope caches only that scope), hooks on hits, and background renders
 * through `fastify.routing`.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { Readable } from 'node:stream';
import { describe, test, type TestContext } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { createCache, type StrataCache } from '../../src/index.js';
import { adapterSuite, assertHit, assertStatus } from '../helpers/adapter-suite.js';
import { listen, request, sleep, untilTestEnds, type Running } from '../helpers/http.js';
import { chunkStream, preparePlan, type Origin } from '../helpers/origin.js';

/** Listens on 127.0.0.1:0 once the app is ready; closing closes the app. */
async function serve(app: FastifyInstance): Promise<Running> {
  await app.ready();
  const running = await listen(app.server);
  return { ...running, close: async () => (await running.close(), await app.close()) };
}

/** Executes the origin's plans the Fastify way: reply.code, reply.header, reply.send. */
function fastifyApp(cache: StrataCache, origin: Origin): FastifyInstance {
  const app = Fastify();
  // Bodies of any type, or none, reach the route as text (the suite POSTs without a content type).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body));
  void app.register(cache.fastify());
  app.route({
    method: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'],
    url: '/*',
    handler: async (request, reply) => {
      const url = request.raw.url;
      const plan = origin.begin(request.raw);
      try {
        await preparePlan(plan);
        reply.code(plan.status ?? 200);
        for (const [name, value] of Object.entries(plan.headers ?? {})) reply.header(name, value);
        return reply.send(plan.chunks !== undefined ? chunkStream(plan.chunks, plan.fail === 'after') : (plan.body ?? ''));
      } finally {
        origin.end(url);
      }
    },
  });
  return app;
}

adapterSuite('Fastify', (cache, origin) => serve(fastifyApp(cache, origin)), { answersThrows: true });

describe('Fastify specifics', { timeout: 15_000 }, () => {
  async function start(t: TestContext, setup: (app: FastifyInstance, cache: StrataCache) => void | Promise<void>) {
    const cache = createCache();
    const app = Fastify();
    await setup(app, cache);
    return untilTestEnds(t, await serve(app), cache);
  }

  test('caches string, Buffer, stream and JSON serialized by Fastify', async (t) => {
    const renders = new Map<string, number>();
    const binary = Buffer.from([0, 1, 2, 254, 255, 10, 13]);
    const { url } = await start(t, async (app, cache) => {
      await app.register(cache.fastify());
      app.addHook('onRequest', async (request) => void renders.set(request.url, (renders.get(request.url) ?? 0) + 1));
      app.get('/string', async (_req, reply) => reply.header('cache-control', 'max-age=60').send('a string body'));
      app.get('/buffer', async (_req, reply) => reply.header('cache-control', 'max-age=60').send(binary));
      app.get('/stream', async (_req, reply) => reply.header('cache-control', 'max-age=60').type('text/plain').send(Readable.from(['streamed ', 'in ', 'three'])));
      app.get('/json', { schema: { response: { 200: { type: 'object', properties: { ok: { type: 'boolean' }, items: { type: 'array', items: { type: 'number' } } } } } } }, async (_req, reply) => {
        reply.header('cache-control', 'max-age=60');
        return { ok: true, items: [1, 2, 3], dropped: 'by the response schema' };
      });
    });
    for (const path of ['/string', '/buffer', '/stream', '/json']) assertStatus(await request(`${url}${path}`), 'MISS', path);

    const string = await request(`${url}/string`);
    assertHit(string, 'a string body');
    assert.match(String(string.headers['content-type']), /^text\/plain/);
    const buffer = await request(`${url}/buffer`);
    assertStatus(buffer, 'HIT');
    assert.ok(buffer.raw.equals(binary));
    assert.equal(buffer.headers['content-type'], 'application/octet-stream');
    assertHit(await request(`${url}/stream`), 'streamed in three');
    const json = await request(`${url}/json`);
    assertHit(json, '{"ok":true,"items":[1,2,3]}');
    assert.match(String(json.headers['content-type']), /^application\/json/);
    // The onRequest hook registered after the plugin runs on misses only: hits end in the plugin's.
    assert.deepEqual([...renders.values()], [1, 1, 1, 1]);
  });

  test('encapsulation: registered inside a scope, it caches that scope only', async (t) => {
    let cached = 0;
    let plain = 0;
    const { url, cache } = await start(t, async (app, cache) => {
      await app.register(async (scope) => {
        await scope.register(cache.fastify());
        scope.get('/cached', async (_req, reply) => reply.header('cache-control', 'max-age=60').send(`cached ${++cached}`));
      });
      app.get('/plain', async (_req, reply) => reply.header('cache-control', 'max-age=60').send(`plain ${++plain}`));
    });
    await request(`${url}/cached`);
    assertHit(await request(`${url}/cached`), 'cached 1');
    const p1 = await request(`${url}/plain`);
    const p2 = await request(`${url}/plain`);
    assert.equal(p1.body, 'plain 1');
    assert.equal(p2.body, 'plain 2');
    assert.equal(p2.headers['x-cache'], undefined);
    assert.equal(cache.stats().gets, 2);
  });

  test('hooks before the plugin and onResponse run on hits; later hooks and the handler do not', async (t) => {
    const seen: string[] = [];
    const { url } = await start(t, async (app, cache) => {
      app.addHook('onRequest', async () => void seen.push('before'));
      await app.register(cache.fastify());
      app.addHook('preHandler', async () => void seen.push('preHandler'));
      app.addHook('onResponse', async () => void seen.push('onResponse'));
      app.get('/hooks', async (_req, reply) => (seen.push('handler'), reply.header('cache-control', 'max-age=60').send('hooked')));
    });
    await request(`${url}/hooks`);
    await sleep(20);
    assert.deepEqual(seen.splice(0), ['before', 'preHandler', 'handler', 'onResponse']);
    assertHit(await request(`${url}/hooks`), 'hooked');
    await sleep(20);
    assert.deepEqual(seen, ['before', 'onResponse']);
  });

  test('serverFactory with cache.wrap(handler): hits are answered before Fastify runs at all', async (t) => {
    const cache = createCache();
    let requests = 0;
    let renders = 0;
    const app = Fastify({ serverFactory: (handler) => http.createServer(cache.wrap(handler)) });
    app.addHook('onRequest', async () => void requests++);
    app.get('/wrapped', async (_req, reply) => reply.header('cache-control', 'max-age=60').send(`wrapped ${++renders}`));
    const { url } = untilTestEnds(t, await serve(app), cache);
    assertStatus(await request(`${url}/wrapped`), 'MISS');
    assertHit(await request(`${url}/wrapped`), 'wrapped 1');
    assert.equal(requests, 1, 'the hit never reached Fastify');
    assert.equal(renders, 1);
  });

  test('cache.prime() renders routes through fastify.routing before any client asks', async (t) => {
    let renders = 0;
    const { url, cache } = await start(t, async (app, cache) => {
      await app.register(cache.fastify());
      app.get('/primed/:id', async (request, reply) => reply.header('cache-control', 'max-age=60').send(`primed ${(request.params as { id: string }).id} #${++renders}`));
    });
    const summary = await cache.prime(['/primed/1', '/primed/2'], { host: new URL(url).host });
    assert.deepEqual(summary, { ok: 2, failed: 0 });
    assertHit(await request(`${url}/primed/2`), 'primed 2 #2');
    assert.equal(renders, 2);
  });
});
