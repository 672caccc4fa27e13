/**
 * The flush endpoint over real sockets: an AEM flush agent's request replayed byte for byte,
 * guard (allowed clients, token), limits, the JSON form, hard removal, and a refetching flush
 * under load that costs exactly one render per refetched page with no client waiting on the origin.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import net from 'node:net';
import { after, describe, test } from 'node:test';
import express from 'express';
import Koa from 'koa';
import { createCache, type CacheOptions, type StrataCache } from '../../src/index.js';
import { listen, request, type Running } from '../helpers/http.js';

const servers: Running[] = [];
const caches: StrataCache[] = [];
after(async () => {
  for (const s of servers) await s.close();
  for (const c of caches) await c.close();
});

/** Long-lived pages that say how often each was rendered; renders may be held at a gate. */
async function site(options: CacheOptions = {}) {
  const renders = new Map<string, number>();
  const state = { gate: undefined as Promise<void> | undefined };
  const cache = createCache(options);
  caches.push(cache);
  const handler = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = req.url ?? '/';
    const n = (renders.get(url) ?? 0) + 1;
    renders.set(url, n);
    if (state.gate !== undefined) await state.gate;
    res.writeHead(200, { 'content-type': 'text/html', 'cache-control': 'max-age=3600' });
    res.end(`${url} v${n}`);
  };
  const srv = await listen(cache.wrap(handler));
  servers.push(srv);
  const total = () => [...renders.values()].reduce((a, b) => a + b, 0);
  return { cache, srv, renders, state, total, get: (p: string) => request(`${srv.url}${p}`) };
}

/** Sends raw bytes over a socket and returns the raw response text (connection closed by us). */
function raw(port: number, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let text = '';
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      text += d;
      const head = text.indexOf('\r\n\r\n');
      const m = /content-length: (\d+)/i.exec(text);
      if (head !== -1 && m !== null && text.length >= head + 4 + Number(m[1])) {
        socket.end();
        resolve(text);
      }
    });
    socket.on('error', reject);
    socket.write(bytes, 'latin1');
  });
}

function waitFor(cache: StrataCache, event: 'refetch' | 'refetch-error', count: number): Promise<void> {
  return new Promise((resolve) => {
    let n = 0;
    cache.on(event, () => {
      if (++n === count) resolve();
    });
  });
}

describe('AEM flush agent protocol', () => {
  test('a refetching Activate replayed byte for byte: 200 <H1>OK</H1>, pages re-rendered in the background', async () => {
    const s = await site({ gracePeriod: 0, statLevel: 2 });
    await s.get('/content/site/en/page.html');
    await s.get('/content/site/en.html');
    await s.get('/content/other/page.html');
    const refetched = waitFor(s.cache, 'refetch', 2);
    const body = '/content/site/en/page.html\n/content/site/en.html\n';
    const reply = await raw(
      s.srv.port,
      'POST /dispatcher/invalidate.cache HTTP/1.1\r\n' +
        'CQ-Action: Activate\r\n' +
        'CQ-Handle: /content/site/en/page\r\n' +
        'CQ-Path: /content/site/en/page\r\n' +
        'Referer: about:blank\r\n' +
        'Content-Type: application/octet-stream\r\n' +
        `Host: 127.0.0.1:${s.srv.port}\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\n` +
        '\r\n' +
        body,
    );
    assert.match(reply, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(reply, /\r\n\r\n<H1>OK<\/H1>$/);
    await refetched;
    assert.equal(s.renders.get('/content/site/en/page.html'), 2);
    assert.equal(s.renders.get('/content/site/en.html'), 2);
    for (const p of ['/content/site/en/page.html', '/content/site/en.html']) {
      const r = await s.get(p);
      assert.equal(r.headers['x-cache'], 'HIT');
      assert.equal(r.body, `${p} v2`);
    }
    assert.equal((await s.get('/content/other/page.html')).headers['x-cache'], 'HIT');
    const st = s.cache.stats();
    assert.equal(st.flushes, 1);
    assert.equal(st.invalidations, 1);
    assert.equal(st.refetches, 2);
  });

  test('a plain (GET, no body) Activate invalidates; Test answers OK and changes nothing', async () => {
    // The agent's transport URI names the dispatcher host (http://dispatcher/...): an admin host by flush.hosts.
    const s = await site({ gracePeriod: 0, flush: { hosts: ['dispatcher'] } });
    await s.get('/g/page.html');
    const test = await raw(s.srv.port, 'GET /dispatcher/invalidate.cache HTTP/1.1\r\nCQ-Action: Test\r\nCQ-Handle: /\r\nContent-Length: 0\r\nHost: dispatcher\r\n\r\n');
    assert.match(test, /^HTTP\/1\.1 200 /);
    assert.equal((await s.get('/g/page.html')).headers['x-cache'], 'HIT');
    const r = await request(`${s.srv.url}/dispatcher/invalidate.cache`, { headers: { 'CQ-Action': 'Activate', 'CQ-Handle': '/g/page' } });
    assert.equal(r.status, 200);
    assert.equal(r.body, '<H1>OK</H1>');
    assert.equal((await s.get('/g/page.html')).headers['x-cache'], 'MISS');
    assert.equal(s.cache.stats().invalidations, 1);
  });

  test('Deactivate removes hard: not served even within grace', async () => {
    const s = await site({ gracePeriod: 60_000 });
    await s.get('/d/page.html');
    const r = await request(`${s.srv.url}/dispatcher/invalidate.cache`, {
      method: 'POST',
      headers: { 'CQ-Action': 'Deactivate', 'CQ-Handle': '/d/page', 'CQ-Action-Scope': 'ResourceOnly' },
    });
    assert.equal(r.status, 200);
    const after = await s.get('/d/page.html');
    assert.equal(after.headers['x-cache'], 'MISS');
    assert.equal(after.body, '/d/page.html v2');
  });

  test('malformed requests get 400, oversized 413, other methods 405; nothing changes', async () => {
    const s = await site({ gracePeriod: 0, flush: { maxBodyBytes: 64, maxLines: 2 } });
    await s.get('/m.html');
    const url = `${s.srv.url}/dispatcher/invalidate.cache`;
    const cases: Array<[Parameters<typeof request>[1], number]> = [
      [{ method: 'POST', headers: { 'CQ-Action': 'Activate' } }, 400],
      [{ method: 'POST', headers: { 'CQ-Action': 'Nope', 'CQ-Handle': '/m' } }, 400],
      [{ method: 'POST', headers: { 'CQ-Action': 'Activate', 'CQ-Handle': '/m', 'Content-Type': 'text/plain' }, body: '/a\n/b\n/c\n' }, 400],
      [{ method: 'POST', headers: { 'CQ-Action': 'Activate', 'CQ-Handle': '/m', 'Content-Type': 'text/plain' }, body: `/${'x'.repeat(100)}\n` }, 413],
      [{ method: 'PUT', headers: { 'CQ-Action': 'Activate', 'CQ-Handle': '/m' } }, 405],
      [{ method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"paths":' }, 400],
    ];
    for (const [options, status] of cases) {
      const r = await request(url, options);
      assert.equal(r.status, status, JSON.stringify(options));
    }
    assert.equal((await s.get('/m.html')).headers['x-cache'], 'HIT');
    assert.equal(s.cache.stats().invalidations, 0);
    assert.equal(s.cache.stats().flushRejected, cases.length);
  });
});

describe('flush guard', () => {
  test('a client outside allowedClients gets 403 and nothing changes', async () => {
    const s = await site({ gracePeriod: 0, flush: { allowedClients: ['10.0.0.0/8', 'fd00::/8'] } });
    await s.get('/guard.html');
    const r = await request(`${s.srv.url}/dispatcher/invalidate.cache`, { headers: { 'CQ-Action': 'Activate', 'CQ-Handle': '/guard' } });
    assert.equal(r.status, 403);
    assert.equal((await s.get('/guard.html')).headers['x-cache'], 'HIT');
    assert.equal(s.cache.stats().invalidations, 0);
  });

  test('with a token: missing or wrong is 403 even from loopback; the right one works', async () => {
    const s = await site({ gracePeriod: 0, flush: { token: 's3cret-token' } });
    await s.get('/tok.html');
    const url = `${s.srv.url}/dispatcher/invalidate.cache`;
    const headers = { 'CQ-Action': 'Activate', 'CQ-Handle': '/tok' };
    assert.equal((await request(url, { headers })).status, 403);
    assert.equal((await request(url, { headers: { ...headers, Authorization: 'Bearer wrong' } })).status, 403);
    assert.equal((await request(url, { headers: { ...headers, Authorization: 's3cret-token' } })).status, 403);
    assert.equal((await s.get('/tok.html')).headers['x-cache'], 'HIT');
    assert.equal((await request(url, { headers: { ...headers, Authorization: 'Bearer s3cret-token' } })).status, 200);
    assert.equal((await s.get('/tok.html')).headers['x-cache'], 'MISS');
  });

  test('flush: false leaves the path to the handler', async () => {
    const s = await site({ flush: false });
    const r = await request(`${s.srv.url}/dispatcher/invalidate.cache`, { headers: { 'CQ-Action': 'Activate', 'CQ-Handle': '/x' } });
    assert.equal(r.body, '/dispatcher/invalidate.cache v1');
  });
});

describe('JSON form', () => {
  test('{ paths, tags, refetch }', async () => {
    const s = await site({ gracePeriod: 0 });
    const tagged = createCache({ gracePeriod: 0 });
    caches.push(tagged);
    await s.get('/j/a.html');
    await s.get('/j/b.html');
    const done = waitFor(s.cache, 'refetch', 1);
    const r = await request(`${s.srv.url}/dispatcher/invalidate.cache`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ paths: ['/j/a', '/j/b'], tags: ['t'], refetch: ['/j/a.html'] }),
    });
    assert.equal(r.status, 200);
    const json = JSON.parse(r.body) as { ok: boolean; id: number; refetch: number };
    assert.equal(json.ok, true);
    assert.equal(json.refetch, 1);
    await done;
    assert.equal((await s.get('/j/a.html')).headers['x-cache'], 'HIT');
    assert.equal((await s.get('/j/b.html')).headers['x-cache'], 'MISS');
    assert.equal(s.renders.get('/j/a.html'), 2);
  });
});

describe('refetching flush under load', () => {
  test('200 concurrent requests during a flush of 10 pages: exactly 10 renders, nobody waits on the origin', { timeout: 10_000 }, async () => {
    // gracePeriod 0: only the pending refetch keeps the old copies servable.
    const s = await site({ gracePeriod: 0, statLevel: 1, refetch: { concurrency: 3 } });
    const pages = Array.from({ length: 10 }, (_, i) => `/content/p${i}.html`);
    for (const p of pages) await s.get(p);
    assert.equal(s.total(), 10);
    let open!: () => void;
    s.state.gate = new Promise<void>((r) => (open = r));
    const refetched = waitFor(s.cache, 'refetch', 10);
    const flush = await request(`${s.srv.url}/dispatcher/invalidate.cache`, {
      method: 'POST',
      headers: { 'CQ-Action': 'Activate', 'CQ-Handle': '/content/p0', 'content-type': 'text/plain' },
      body: pages.join('\n'),
    });
    assert.equal(flush.status, 200);
    // The origin holds every render until all 200 clients were answered: none of them waits on it.
    const replies = await Promise.all(Array.from({ length: 200 }, (_, i) => s.get(pages[i % 10]!)));
    for (const [i, r] of replies.entries()) {
      assert.equal(r.status, 200);
      assert.equal(r.headers['x-cache'], 'STALE');
      assert.equal(r.body, `${pages[i % 10]} v1`);
    }
    open();
    await refetched;
    assert.equal(s.total(), 20, 'exactly one render per refetched page');
    for (const p of pages) {
      const r = await s.get(p);
      assert.equal(r.headers['x-cache'], 'HIT');
      assert.equal(r.body, `${p} v2`);
    }
    assert.equal(s.total(), 20);
    assert.equal(s.cache.stats().refetches, 10);
    assert.equal(s.cache.stats().stale, 200);
  });
});

describe('refetch through the framework adapters', () => {
  test('Express: cache.middleware() refetches in the background', { timeout: 10_000 }, async () => {
    let renders = 0;
    const cache = createCache({ gracePeriod: 0 });
    caches.push(cache);
    const app = express();
    // A body parser in front of the cache reads the JSON flush body first.
    app.use(express.json());
    app.use(cache.middleware());
    app.get('/ex2.html', (_req, res) => {
      renders++;
      res.set('cache-control', 'max-age=3600').send(`express2 v${renders}`);
    });
    app.get('/ex.html', (_req, res) => {
      renders++;
      res.set('cache-control', 'max-age=3600').send(`express v${renders}`);
    });
    const srv = await listen(app as never);
    servers.push(srv);
    assert.equal((await request(`${srv.url}/ex.html`)).body, 'express v1');
    const done = waitFor(cache, 'refetch', 1);
    const r = await request(`${srv.url}/dispatcher/invalidate.cache`, {
      method: 'POST',
      headers: { 'CQ-Action': 'Activate', 'CQ-Handle': '/ex', 'content-type': 'text/plain' },
      body: '/ex.html\n',
    });
    assert.equal(r.status, 200);
    await done;
    const after = await request(`${srv.url}/ex.html`);
    assert.equal(after.headers['x-cache'], 'HIT');
    assert.equal(after.body, 'express v2');
    assert.equal(renders, 2);
    // The JSON form through express.json(): the parsed body is used.
    assert.equal((await request(`${srv.url}/ex2.html`)).body, 'express2 v3');
    const done2 = waitFor(cache, 'refetch', 1);
    const j = await request(`${srv.url}/dispatcher/invalidate.cache`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ paths: ['/ex2'], refetch: ['/ex2.html'] }),
    });
    assert.equal(j.status, 200);
    await done2;
    const after2 = await request(`${srv.url}/ex2.html`);
    assert.equal(after2.headers['x-cache'], 'HIT');
    assert.equal(after2.body, 'express2 v4');
  });

  test('Koa: cache.koa() refetches in the background', async () => {
    let renders = 0;
    const cache = createCache({ gracePeriod: 0 });
    caches.push(cache);
    const app = new Koa();
    app.use(cache.koa());
    app.use(async (ctx) => {
      renders++;
      ctx.set('cache-control', 'max-age=3600');
      ctx.body = `koa v${renders}`;
    });
    const srv = await listen(app.callback());
    servers.push(srv);
    assert.equal((await request(`${srv.url}/k.html`)).body, 'koa v1');
    const done = waitFor(cache, 'refetch', 1);
    await cache.invalidate('/k', { refetch: ['/k.html'] });
    await done;
    const after = await request(`${srv.url}/k.html`);
    assert.equal(after.headers['x-cache'], 'HIT');
    assert.equal(after.body, 'koa v2');
    assert.equal(renders, 2);
  });
});
