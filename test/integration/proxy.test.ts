/**
 * Reverse-proxy mode: createProxy() behind cache.wrap(), in front of a real counting upstream on
 * 127.0.0.1 (the CLI that runs it: cli.test.ts).
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, describe, test } from 'node:test';
import { createCache, createProxy, createUpstreamHandler, type UpstreamOptions } from '../../src/index.js';
import { listen, request, sleep, type Running } from '../helpers/http.js';

/** An upstream that counts renders per path and can be told to fail or hang. */
async function upstream(): Promise<Running & { renders: Map<string, number>; mode: { value: 'ok' | '503' | 'hang' }; version: { value: number }; seen: http.IncomingHttpHeaders[] }> {
  const renders = new Map<string, number>();
  const mode = { value: 'ok' as 'ok' | '503' | 'hang' };
  const version = { value: 1 };
  const seen: http.IncomingHttpHeaders[] = [];
  const running = await listen((req, res) => {
    seen.push(req.headers);
    const path = req.url ?? '/';
    if (mode.value === 'hang') return; // never answers
    renders.set(path, (renders.get(path) ?? 0) + 1);
    if (mode.value === '503') {
      res.writeHead(503, { 'content-type': 'text/plain' });
      return void res.end('upstream down');
    }
    if (req.method === 'POST') {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        res.writeHead(201, { 'content-type': 'text/plain' });
        res.end(`posted ${Buffer.concat(chunks).toString()}`);
      });
      return;
    }
    if (path.startsWith('/plain') || path.startsWith('/dated')) {
      // No explicit freshness; /dated has a validator from ten days ago.
      const lastModified = path.startsWith('/dated') ? { 'last-modified': new Date(Date.now() - 10 * 86_400_000).toUTCString() } : {};
      res.writeHead(200, { 'content-type': 'text/html', ...lastModified });
      return void res.end(`<p>${path} v${version.value}</p>`);
    }
    res.writeHead(200, { 'content-type': 'text/html', 'cache-control': 'max-age=60', connection: 'keep-alive', 'x-upstream': 'yes' });
    res.end(`<p>${path} v${version.value}</p>`);
  });
  return Object.assign(running, { renders, mode, version, seen });
}

describe('createProxy behind cache.wrap()', () => {
  const closers: Array<() => Promise<void>> = [];
  after(async () => {
    for (const close of closers.reverse()) await close();
  });

  async function setup(options: UpstreamOptions = {}) {
    const up = await upstream();
    const cache = createCache({ gracePeriod: 0 });
    const proxy = await listen(cache.wrap(createProxy({ upstream: up.url, ...options })));
    closers.push(() => up.close(), () => proxy.close(), () => cache.close());
    return { up, cache, proxy };
  }

  test('a miss is forwarded once, then served from the cache with the upstream headers', async () => {
    const { up, proxy } = await setup();
    const first = await request(`${proxy.url}/page?b=1&a=2`);
    assert.equal(first.status, 200);
    assert.equal(first.headers['x-cache'], 'MISS');
    // The upstream renders the keyed (normalized) target, so every request sharing the key agrees.
    assert.equal(first.body, '<p>/page?a=2&b=1 v1</p>');
    const second = await request(`${proxy.url}/page?a=2&b=1`);
    assert.equal(second.headers['x-cache'], 'HIT');
    assert.equal(second.headers['x-upstream'], 'yes');
    assert.equal(second.body, '<p>/page?a=2&b=1 v1</p>');
    assert.equal(up.renders.get('/page?a=2&b=1'), 1);
    // The client's host travels as X-Forwarded-Host, with the scheme and address it came from.
    const sent = up.seen[0]!;
    assert.equal(sent.host, new URL(up.url).host);
    assert.equal(sent['x-forwarded-host'], new URL(proxy.url).host);
    assert.equal(sent['x-forwarded-for'], '127.0.0.1');
    assert.equal(sent['x-forwarded-proto'], 'http');
  });

  test('preserveHost sends the client Host upstream', async () => {
    const { up, proxy } = await setup({ preserveHost: true });
    await request(`${proxy.url}/h`, { headers: { host: 'www.example.com' } });
    assert.equal(up.seen[0]!.host, 'www.example.com');
    assert.equal(up.seen[0]!['x-forwarded-host'], 'www.example.com');
  });

  test('a POST body is forwarded and a successful POST invalidates the URL', async () => {
    const { up, proxy } = await setup();
    await request(`${proxy.url}/form`);
    assert.equal((await request(`${proxy.url}/form`)).headers['x-cache'], 'HIT');
    const posted = await request(`${proxy.url}/form`, { method: 'POST', body: 'x=1' });
    assert.equal(posted.status, 201);
    assert.equal(posted.body, 'posted x=1');
    up.version.value = 2;
    const after = await request(`${proxy.url}/form`);
    assert.equal(after.headers['x-cache'], 'MISS');
    assert.equal(after.body, '<p>/form v2</p>');
  });

  test('upstream down: 502 without a copy; the stale copy when there is one', async () => {
    const { up, proxy } = await setup();
    await request(`${proxy.url}/kept`);
    await up.close();
    const fresh = await request(`${proxy.url}/never-seen`);
    assert.equal(fresh.status, 502);
    assert.equal(fresh.body, 'Bad Gateway');
    assert.equal((await request(`${proxy.url}/kept`)).headers['x-cache'], 'HIT');
  });

  test('upstream answering 503 after an invalidation: the old copy is served STALE', async () => {
    const { up, cache, proxy } = await setup();
    await request(`${proxy.url}/p.html`);
    await cache.invalidate('/p.html');
    up.mode.value = '503';
    const r = await request(`${proxy.url}/p.html`);
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-cache'], 'STALE');
    assert.equal(r.body, '<p>/p.html v1</p>');
  });

  test('a hanging upstream answers 504 after the timeout', async () => {
    const { up, proxy } = await setup({ timeout: 200 });
    up.mode.value = 'hang';
    const started = Date.now();
    const r = await request(`${proxy.url}/slow`);
    assert.equal(r.status, 504);
    assert.ok(Date.now() - started < 5_000);
  });

  test('a refetch renders through the proxy in the background, with no client', async () => {
    const { up, cache, proxy } = await setup();
    await request(`${proxy.url}/r.html`);
    up.version.value = 2;
    await cache.invalidate('/r.html', { refetch: true });
    for (let i = 0; i < 100 && up.renders.get('/r.html') !== 2; i++) await sleep(20);
    assert.equal(up.renders.get('/r.html'), 2);
    const r = await request(`${proxy.url}/r.html`);
    assert.equal(r.headers['x-cache'], 'HIT');
    assert.equal(r.body, '<p>/r.html v2</p>');
  });

  test('bad upstream URLs and options throw, naming them', () => {
    assert.throws(() => createProxy({ upstream: 'not a url' }), /expected options.upstream to be an http\(s\) URL, got 'not a url'/);
    assert.throws(() => createProxy({ upstream: 'ftp://x' }), TypeError);
    assert.throws(() => createProxy({ upstream: 'http://x', timeout: -1 }), /options.timeout/);
    assert.throws(() => createProxy({ upstream: 'http://x', maxSockets: 0 }), /options.maxSockets to be a positive integer, got 0/);
    // The deprecated name still works, with the same checks.
    assert.throws(() => createUpstreamHandler('not a url'), /expected options.upstream/);
    assert.equal(typeof createUpstreamHandler('http://127.0.0.1:1'), 'function');
  });
});
