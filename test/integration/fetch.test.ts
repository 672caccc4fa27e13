/**
 * The Fetch-API adapter, `cache.fetch(handler)`: the shared adapter scenarios through
 * `@hono/node-server` (the usual way to serve a WHATWG handler on Node), plus what a Fetch
 * handler adds: a streamed Response body reaches the first client before it ends and is stored,
 * the wrapped handler called directly with a Request (no server), and Hono's `app.fetch`.
 */
import assert from 'node:assert/strict';
import http, { type IncomingMessage } from 'node:http';
import { describe, test, type TestContext } from 'node:test';
import { getRequestListener } from '@hono/node-server';
import { Hono } from 'hono';
import { createCache, type FetchHandler, type StrataCache } from '../../src/index.js';
import { adapterSuite, assertHit, assertStatus } from '../helpers/adapter-suite.js';
import { HOST, kill, lateServer, SECRET } from '../helpers/cluster.js';
import { listen, request } from '../helpers/http.js';
import { OriginError, preparePlan, until, type Origin } from '../helpers/origin.js';

/** A body that yields each chunk on its own tick, failing after the first when `failAfterFirst`. */
function chunkStream(chunks: Array<string | Buffer>, failAfterFirst: boolean): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream({
    async pull(controller) {
      await new Promise((r) => setImmediate(r));
      if (failAfterFirst && i === 1) return controller.error(new OriginError('after the first chunk'));
      if (i === chunks.length) return controller.close();
      const chunk = chunks[i++]!;
      controller.enqueue(typeof chunk === 'string' ? new TextEncoder().encode(chunk) : new Uint8Array(chunk));
    },
  });
}

/** Executes the origin's plans the Fetch way: a Response with status, Headers and a body. */
function fetchOrigin(origin: Origin): FetchHandler {
  return async (request) => {
    const u = new URL(request.url);
    const headers: Record<string, string> = {};
    request.headers.forEach((v, k) => (headers[k] = v));
    const req = { method: request.method, url: u.pathname + u.search, headers } as unknown as IncomingMessage;
    const plan = origin.begin(req);
    try {
      await preparePlan(plan);
      const out = new Headers();
      for (const [name, value] of Object.entries(plan.headers ?? {})) for (const v of [value].flat()) out.append(name, v);
      const body = plan.chunks !== undefined ? chunkStream(plan.chunks, plan.fail === 'after') : (plan.body ?? '');
      return new Response(request.method === 'HEAD' ? null : body, { status: plan.status ?? 200, headers: out });
    } finally {
      origin.end(req.url);
    }
  };
}

adapterSuite('Fetch (@hono/node-server)', (cache, origin) => listen(http.createServer(getRequestListener(cache.fetch(fetchOrigin(origin))))));

describe('Fetch specifics', { timeout: 15_000 }, () => {
  function start(t: TestContext): StrataCache {
    const cache = createCache();
    t.after(() => cache.close());
    return cache;
  }

  test('a streamed body reaches the first client before the handler finishes, and is stored', async (t) => {
    const cache = start(t);
    let finish!: () => void;
    const finished = new Promise<void>((r) => (finish = r));
    let renders = 0;
    const handler = cache.fetch(async () => {
      renders++;
      const body = new ReadableStream<Uint8Array>({
        async start(controller) {
          controller.enqueue(new TextEncoder().encode('first chunk, '));
          await finished;
          controller.enqueue(new TextEncoder().encode('last chunk'));
          controller.close();
        },
      });
      return new Response(body, { headers: { 'content-type': 'text/plain', 'cache-control': 'max-age=60' } });
    });
    const response = await handler(new Request('http://shop.example/stream'));
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('x-cache'), 'MISS');
    const reader = response.body!.getReader();
    const first = await reader.read();
    assert.equal(new TextDecoder().decode(first.value), 'first chunk, ', 'the first chunk arrives while the render is still open');
    finish();
    let rest = '';
    for (let r = await reader.read(); !r.done; r = await reader.read()) rest += new TextDecoder().decode(r.value);
    assert.equal(rest, 'last chunk');
    await until(() => cache.stats().stores === 1);
    const hit = await handler(new Request('http://shop.example/stream'));
    assert.equal(await hit.text(), 'first chunk, last chunk');
    assert.equal(hit.headers.get('x-cache'), 'HIT');
    assert.equal(hit.headers.get('content-length'), '23');
    assert.equal(renders, 1);
  });

  test('called directly with Requests: hits, HEAD, 304, and the Host taken from the URL', async (t) => {
    const cache = start(t);
    let renders = 0;
    const handler = cache.fetch((request) => {
      renders++;
      return new Response(`${request.method} ${new URL(request.url).host} #${renders}`, { headers: { etag: '"e1"', 'cache-control': 'max-age=60' } });
    });
    const miss = await handler(new Request('http://a.example/page'));
    assert.equal(await miss.text(), 'GET a.example #1');
    const hit = await handler(new Request('http://a.example/page'));
    assert.equal(await hit.text(), 'GET a.example #1');
    assert.equal(hit.headers.get('x-cache'), 'HIT');
    assert.equal((await (await handler(new Request('http://b.example/page'))).text()), 'GET b.example #2', 'another host, another key');
    const head = await handler(new Request('http://a.example/page', { method: 'HEAD' }));
    assert.equal(head.body, null);
    assert.equal(head.headers.get('content-length'), '16');
    const notModified = await handler(new Request('http://a.example/page', { headers: { 'if-none-match': '"e1"' } }));
    assert.equal(notModified.status, 304);
    assert.equal(notModified.body, null);
    assert.equal(renders, 2);
  });

  test('a POST body reaches the handler; the flush endpoint refuses a client whose address is unknown, token or not', async (t) => {
    const cache = createCache({ flush: { token: 'secret-token-123' } });
    t.after(() => cache.close());
    const handler = cache.fetch(async (request) => new Response(`got ${await request.text()}`));
    const posted = await handler(new Request('http://a.example/form', { method: 'POST', body: 'a=1' }));
    assert.equal(await posted.text(), 'got a=1');
    const flush = (auth?: string) =>
      handler(
        new Request('http://a.example/dispatcher/invalidate.cache', {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...(auth === undefined ? {} : { authorization: `Bearer ${auth}` }) },
          body: JSON.stringify({ paths: ['/x'] }),
        }),
      );
    assert.equal((await flush()).status, 403);
    assert.equal((await flush('secret-token-123')).status, 403, 'no Node request passed along: no address to check against allowedClients');
    assert.equal(cache.stats().invalidations, 0);
  });

  test('peers: two nodes serving cache.fetch() on @hono/node-server render a page once for the cluster', async (t) => {
    const servers = await Promise.all([lateServer(), lateServer()]);
    const urls = servers.map((s) => s.url);
    let renders = 0;
    const handler: FetchHandler = () => (renders++, new Response(`page render ${renders}`, { headers: { 'cache-control': 'max-age=60' } }));
    const caches = servers.map((s) => createCache({ peers: { self: s.url, nodes: urls, secret: SECRET, queryTimeout: 2_000 } }));
    servers.forEach((s, i) => s.bind(getRequestListener(caches[i]!.fetch(handler))));
    t.after(async () => {
      for (const s of servers) await kill(s.server);
      for (const c of caches) await c.close();
    });
    const headers = { host: HOST };
    const a = await request(`${urls[0]}/shared`, { headers });
    assertStatus(a, 'MISS');
    const b = await request(`${urls[1]}/shared`, { headers });
    assert.equal(b.body, 'page render 1');
    assert.equal(b.headers['x-cache'], 'PEER', 'node B took node A\'s copy through A\'s fetch adapter');
    assert.equal(renders, 1);
    assert.equal(caches[1]!.stats().peerHits, 1);
  });

  test('@hono/node-server: a hit looked up on the Node request itself is keyed as before; an absolute-form target still hits its origin-form entry', async (t) => {
    const cache = start(t);
    let renders = 0;
    const seen: string[] = [];
    const running = await listen(
      http.createServer(
        getRequestListener(
          cache.fetch((_request: Request, env: unknown) => {
            const { incoming } = env as { incoming: IncomingMessage };
            renders++;
            seen.push(`${incoming.url} ${String(incoming.headers.host)}`);
            return new Response(`page ${renders}`, { headers: { 'cache-control': 'max-age=60' } });
          }),
        ),
      ),
    );
    t.after(() => running.close());
    const { host } = new URL(running.url);
    const get = (path: string, headers: Record<string, string>) =>
      new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>((resolve, reject) => {
        const req = http.get({ host: '127.0.0.1', port: Number(new URL(running.url).port), path, headers, agent: false }, (res) => {
          let body = '';
          res.setEncoding('utf8').on('data', (d: string) => (body += d));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        });
        req.on('error', reject);
      });
    assertStatus(await request(`${running.url}/p?b=2&a=1`), 'MISS');
    // Origin-form, query in another order, Host in capitals: the same key, served from memory.
    const hit = await get('/p?a=1&b=2', { host: host.toUpperCase() });
    assert.equal(hit.body, 'page 1');
    assert.equal(hit.headers['x-cache'], 'HIT');
    // Absolute-form: its authority wins over Host (RFC 9112 §3.2.2), as on the full request path.
    const absolute = await get(`http://${host}/p?b=2&a=1`, { host: 'other.example' });
    assert.equal(absolute.body, 'page 1');
    assert.equal(absolute.headers['x-cache'], 'HIT');
    assert.equal(renders, 1);
    // A miss still renders with the Node request the server passed, untouched by the lookup.
    assertStatus(await request(`${running.url}/q`), 'MISS');
    assert.deepEqual(seen, [`/p?b=2&a=1 ${host}`, `/q ${host}`]);
    assert.equal(cache.stats().hits, 2);
  });

  test('Hono: app.fetch behind @hono/node-server, the route sees the request and c.env', async (t) => {
    const cache = start(t);
    let renders = 0;
    const app = new Hono<{ Bindings: { incoming: IncomingMessage } }>();
    app.get('/hello/:name', (c) => {
      renders++;
      c.header('cache-control', 'max-age=60');
      return c.json({ hello: c.req.param('name'), remote: c.env.incoming?.socket.remoteAddress ?? 'background' });
    });
    const running = await listen(http.createServer(getRequestListener(cache.fetch(app.fetch))));
    t.after(() => running.close());
    const first = await request(`${running.url}/hello/ada`);
    assert.deepEqual(JSON.parse(first.body), { hello: 'ada', remote: '127.0.0.1' });
    assertStatus(first, 'MISS');
    assertHit(await request(`${running.url}/hello/ada`), first.body);
    assert.equal((await request(`${running.url}/nope`)).status, 404);
    assert.equal(renders, 1);
  });
});
