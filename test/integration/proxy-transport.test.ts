/**
 * createProxy's transport against real upstreams on 127.0.0.1: streaming both ways (first bytes
 * before the upstream ends, 5 MB bodies, 2 MB uploads), hop-by-hop headers, interim (1xx)
 * responses relayed, a complete response kept when the upstream sends bytes past its end, and
 * one retry on a new connection when a reused keep-alive socket turns out to be dead.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { createCache, createProxy } from '../../src/index.js';
import { closedAfterFile, listen, request, type Running } from '../helpers/http.js';

const tracked = closedAfterFile();

async function proxyTo(upstreamUrl: string, options: { timeout?: number } = {}): Promise<Running> {
  const cache = createCache({ defaultTtl: 0, gracePeriod: 0 });
  tracked.caches.push(cache);
  const proxy = await listen(cache.wrap(createProxy({ upstream: upstreamUrl, ...options })));
  tracked.servers.push(proxy);
  return proxy;
}

/** A raw TCP upstream: `answer` writes whatever bytes it likes for each connection's first request. */
async function rawUpstream(answer: (socket: net.Socket) => void): Promise<string> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    let seen = '';
    socket.on('data', (chunk: Buffer) => {
      seen += chunk.toString('latin1');
      if (seen.includes('\r\n\r\n')) {
        seen = '';
        answer(socket);
      }
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  tracked.servers.push({
    server: server as never,
    url,
    port: 0,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  });
  return url;
}

/** One GET that also records the interim responses the client received. */
function getWithInterim(url: string): Promise<{ status: number; body: string; interim: Array<{ status: number; headers: http.IncomingHttpHeaders }> }> {
  return new Promise((resolve, reject) => {
    const interim: Array<{ status: number; headers: http.IncomingHttpHeaders }> = [];
    const req = http.get(url, { agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, interim }));
    });
    req.on('information', (info) => interim.push({ status: info.statusCode, headers: info.headers }));
    req.on('error', reject);
  });
}

describe('reverse proxy: streaming and headers', () => {
  test('the first bytes reach the client before the upstream has finished', async () => {
    let finish: () => void = () => {};
    const up = await listen((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html', 'cache-control': 'max-age=60' });
      res.write('<p>head</p>');
      finish = () => res.end('<p>tail</p>');
    });
    tracked.servers.push(up);
    const proxy = await proxyTo(up.url);
    const body = await new Promise<string>((resolve, reject) => {
      http
        .get(`${proxy.url}/stream`, { agent: false }, (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            // The upstream ends only once the client holds the first chunk.
            if (text === '') finish();
            text += chunk;
          });
          res.on('end', () => resolve(text));
        })
        .on('error', reject);
    });
    assert.equal(body, '<p>head</p><p>tail</p>');
  });

  test('a 5 MB response streams through intact and a 2 MB upload reaches the upstream intact', async () => {
    const big = Buffer.alloc(5 * 1024 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
    let uploaded: Buffer | undefined;
    const up = await listen((req, res) => {
      if (req.method === 'POST') {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          uploaded = Buffer.concat(chunks);
          res.writeHead(200, { 'content-type': 'text/plain' });
          res.end(`got ${uploaded.length}`);
        });
        return;
      }
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'cache-control': 'max-age=60' });
      // Written in chunks, as a file stream would.
      for (let o = 0; o < big.length; o += 256 * 1024) res.write(big.subarray(o, o + 256 * 1024));
      res.end();
    });
    tracked.servers.push(up);
    const proxy = await proxyTo(up.url);
    const got = await request(`${proxy.url}/big.bin`);
    assert.equal(got.status, 200);
    assert.equal(got.raw.length, big.length);
    assert.ok(got.raw.equals(big));
    const upload = Buffer.alloc(2 * 1024 * 1024, 7);
    const posted = await request(`${proxy.url}/upload`, { method: 'POST', body: upload, headers: { 'content-type': 'application/octet-stream' } });
    assert.equal(posted.body, `got ${upload.length}`);
    assert.ok(uploaded?.equals(upload));
  });

  test('hop-by-hop headers, and those Connection names, are dropped both ways; X-Forwarded-* are set', async () => {
    let seen: http.IncomingHttpHeaders = {};
    const up = await listen((req, res) => {
      seen = req.headers;
      res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'no-store', connection: 'x-upstream-hop', 'x-upstream-hop': 'secret', 'keep-alive': 'timeout=77', 'x-end-to-end': 'kept' });
      res.end('ok');
    });
    tracked.servers.push(up);
    // The proxy alone: behind the cache, X-Forwarded-For is an unkeyed header removed before renders.
    const proxy = await listen(createProxy({ upstream: up.url }));
    tracked.servers.push(proxy);
    const r = await request(`${proxy.url}/hop`, {
      headers: { connection: 'x-client-hop', 'x-client-hop': 'secret', 'proxy-authorization': 'Basic x', te: 'trailers', 'x-forwarded-for': '203.0.113.9', 'x-kept': 'yes' },
    });
    assert.equal(r.body, 'ok');
    assert.equal(seen['x-client-hop'], undefined);
    assert.equal(seen['proxy-authorization'], undefined);
    assert.equal(seen.te, undefined);
    assert.equal(seen['x-kept'], 'yes');
    assert.equal(seen['x-forwarded-for'], '203.0.113.9, 127.0.0.1');
    assert.equal(seen['x-forwarded-proto'], 'http');
    assert.equal(seen['x-forwarded-host'], new URL(proxy.url).host);
    assert.equal(r.headers['x-upstream-hop'], undefined);
    assert.notEqual(r.headers['keep-alive'], 'timeout=77');
    assert.equal(r.headers['x-end-to-end'], 'kept');
  });

  test('maxSockets bounds the connections to the upstream; further requests queue', async () => {
    let open = 0;
    let most = 0;
    const up = await listen((_req, res) => {
      open++;
      most = Math.max(most, open);
      setTimeout(() => {
        open--;
        res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'no-store' });
        res.end('ok');
      }, 100);
    });
    tracked.servers.push(up);
    const proxy = await listen(createProxy({ upstream: up.url, maxSockets: 2 }));
    tracked.servers.push(proxy);
    const replies = await Promise.all(Array.from({ length: 6 }, (_, i) => request(`${proxy.url}/q${i}`)));
    assert.deepEqual(replies.map((r) => r.status), [200, 200, 200, 200, 200, 200]);
    assert.equal(most, 2);
  });

  test('a slow upstream past the timeout: 504; a refused connection: 502', async () => {
    const up = await listen((_req, res) => {
      setTimeout(() => res.end('late'), 2_000).unref();
    });
    tracked.servers.push(up);
    const proxy = await proxyTo(up.url, { timeout: 150 });
    const slow = await request(`${proxy.url}/slow`);
    assert.equal(slow.status, 504);
    assert.equal(slow.body, 'Gateway Timeout');
    // A port nothing listens on.
    const closed = await listen(() => {});
    await closed.close();
    const refused = await proxyTo(closed.url);
    const r = await request(`${refused.url}/x`);
    assert.equal(r.status, 502);
    assert.equal(r.body, 'Bad Gateway');
  });
});

describe('reverse proxy: connection handling', () => {
  test('103 Early Hints and 102 Processing from the upstream reach the client before the final response', async () => {
    const up = await listen((_req, res) => {
      res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' });
      res.writeProcessing();
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'no-store' });
        res.end('final');
      }, 50);
    });
    tracked.servers.push(up);
    const proxy = await proxyTo(up.url);
    const r = await getWithInterim(`${proxy.url}/hints`);
    assert.equal(r.status, 200);
    assert.equal(r.body, 'final');
    assert.deepEqual(
      r.interim.map((i) => i.status),
      [103, 102],
    );
    assert.equal(r.interim[0]!.headers.link, '</style.css>; rel=preload; as=style');
  });

  test('bytes past Content-Length do not destroy the complete response (same packet)', async () => {
    const body = 'x'.repeat(100_000);
    const url = await rawUpstream((socket) => {
      socket.write(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nCache-Control: max-age=60\r\nContent-Length: ${body.length}\r\n\r\n${body}GARBAGE AFTER THE BODY`);
    });
    const proxy = await proxyTo(url);
    const first = await request(`${proxy.url}/extra`);
    assert.equal(first.status, 200);
    assert.equal(first.body.length, body.length);
    assert.equal(first.body, body);
    // Complete, so it was stored too.
    const second = await request(`${proxy.url}/extra`);
    assert.equal(second.headers['x-cache'], 'HIT');
    assert.equal(second.body, body);
  });

  test('bytes past Content-Length arriving later spoil only that connection, not the next request', async () => {
    let n = 0;
    const url = await rawUpstream((socket) => {
      n++;
      socket.write(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nCache-Control: no-store\r\nContent-Length: 5\r\n\r\nhello`);
      setTimeout(() => socket.write('LATE GARBAGE'), 30);
    });
    const proxy = await proxyTo(url);
    const first = await request(`${proxy.url}/a`);
    assert.equal(first.body, 'hello');
    await new Promise((r) => setTimeout(r, 150));
    const second = await request(`${proxy.url}/b`);
    assert.equal(second.status, 200);
    assert.equal(second.body, 'hello');
    assert.ok(n >= 2);
  });

  test('a reused keep-alive socket that fails before any response byte: an idempotent request is retried once on a new connection', async () => {
    // The upstream drops every connection on its second request, as one does when it closes an
    // idle keep-alive connection at the moment the proxy reuses it.
    const perSocket = new WeakMap<net.Socket, number>();
    let served = 0;
    const up = await listen((req, res) => {
      const count = (perSocket.get(req.socket) ?? 0) + 1;
      perSocket.set(req.socket, count);
      if (count > 1) return void req.socket.destroy();
      served++;
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'no-store' });
        res.end(`${req.method} ${req.url}`);
      });
    });
    tracked.servers.push(up);
    const proxy = await proxyTo(up.url);
    assert.equal((await request(`${proxy.url}/one`)).body, 'GET /one');
    const second = await request(`${proxy.url}/two`);
    assert.equal(second.status, 200);
    assert.equal(second.body, 'GET /two');
    assert.equal(served, 2);
    // A POST is not idempotent: on a dead reused socket it fails with 502 rather than running twice.
    assert.equal((await request(`${proxy.url}/three`)).body, 'GET /three');
    const post = await request(`${proxy.url}/form`, { method: 'POST', body: 'a=1' });
    assert.equal(post.status, 502);
    assert.equal(served, 3);
  });
});
