/**
 * Cache poisoning, judged on the wire: an attacker's request must never put into the cache,
 * under a key a victim's request maps to, something the victim's own request would not render.
 * The origin reflects what it saw (Host, target, a body, forwarding headers) into the body, as a
 * careless page would; every case sends the attack, then the victim's request, and checks the
 * victim's body and the origin's render count.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { describe, test } from 'node:test';
import express from 'express';
import Koa from 'koa';
import { createCache, type CacheOptions } from '../../src/index.js';
import { closedAfterFile, listen, request } from '../helpers/http.js';
import { rawRequest } from './wire.js';

const tracked = closedAfterFile();

/** A cached origin that reflects Host, target, body and every x-* request header. */
async function reflecting(options: CacheOptions = {}): Promise<{ port: number; renders: () => number }> {
  let renders = 0;
  const cache = createCache(options);
  tracked.caches.push(cache);
  const origin = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    renders++;
    let body = '';
    for await (const chunk of req) body += String(chunk);
    const reflected = Object.entries(req.headers)
      .filter(([name]) => name.startsWith('x-') || name.endsWith('-ip') || name === 'front-end-https')
      .map(([name, value]) => `${name}=${String(value)}`);
    res.setHeader('cache-control', 'public, max-age=60');
    res.end(`host=${req.headers.host} url=${req.url} body=${body} ${reflected.join(' ')}`);
  };
  const server = await listen(cache.wrap(origin));
  tracked.servers.push(server);
  return { port: server.port, renders: () => renders };
}

describe('absolute-form target (RFC 9112 §3.2.2)', () => {
  test('the authority of the target wins over Host: the handler and the key both use it', async () => {
    const { port } = await reflecting();
    const attack = await rawRequest(port, 'GET http://evil.example/abs HTTP/1.1\r\nHost: site');
    // The handler saw origin-form and the target's authority, and the entry is keyed under it.
    assert.equal(attack.body, 'host=evil.example url=/abs body= ');
    const victim = await rawRequest(port, 'GET /abs HTTP/1.1\r\nHost: site');
    assert.equal(victim.body, 'host=site url=/abs body= ');
    assert.equal(victim.headers['x-cache'], 'MISS');
    // Whoever asks for evil.example/abs in origin-form gets the same entry.
    const same = await rawRequest(port, 'GET /abs HTTP/1.1\r\nHost: evil.example');
    assert.equal(same.headers['x-cache'], 'HIT');
    assert.equal(same.body, 'host=evil.example url=/abs body= ');
  });

  test('an absolute-form target with userinfo or a bad authority is passed, never keyed', async () => {
    const { port, renders } = await reflecting();
    for (const target of ['http://user:pw@site/u', 'http://si%zzte/u']) {
      const attack = await rawRequest(port, `GET ${target} HTTP/1.1\r\nHost: site`);
      assert.equal(attack.headers['x-cache'], 'PASS', target);
    }
    const victim = await rawRequest(port, 'GET /u HTTP/1.1\r\nHost: site');
    assert.equal(victim.body, 'host=site url=/u body= ');
    assert.equal(renders(), 3);
  });
});

describe('Host validation (RFC 3986 §3.2.2)', () => {
  test('Host: site/a with GET /b is passed and never lands under site/a/b', async () => {
    const { port, renders } = await reflecting();
    const attack = await rawRequest(port, 'GET /b HTTP/1.1\r\nHost: site/a');
    assert.equal(attack.headers['x-cache'], 'PASS');
    const victim = await rawRequest(port, 'GET /a/b HTTP/1.1\r\nHost: site');
    assert.equal(victim.body, 'host=site url=/a/b body= ');
    assert.equal(renders(), 2);
  });

  test('every invalid Host is a pass; valid ones (IPv6, port, sub-delims) are keyed', async () => {
    const { port, renders } = await reflecting();
    const invalid = ['site/a', 'site?a', 'site#a', 'a@site', 'site:8x', '[::1', 'si te', 'site\\a', 'si%zz', '[zz]'];
    for (const host of invalid) {
      const first = await rawRequest(port, `GET /h HTTP/1.1\r\nHost: ${host}`);
      const second = await rawRequest(port, `GET /h HTTP/1.1\r\nHost: ${host}`);
      assert.deepEqual([first.headers['x-cache'], second.headers['x-cache']], ['PASS', 'PASS'], host);
    }
    assert.equal(renders(), invalid.length * 2);
    for (const host of ['[::1]:8080', 'site:8080', 'a-b.example', "x!$&'()*+,;=.example", '127.0.0.1']) {
      await rawRequest(port, `GET /ok HTTP/1.1\r\nHost: ${host}`);
      const again = await rawRequest(port, `GET /ok HTTP/1.1\r\nHost: ${host}`);
      assert.equal(again.headers['x-cache'], 'HIT', host);
      assert.equal(again.body, `host=${host} url=/ok body= `);
    }
  });

  test('an invalid Host is a pass every time, also right after a valid one (only a valid Host is remembered)', async () => {
    const { port, renders } = await reflecting();
    for (const host of ['site/a', 'site:8x']) {
      assert.equal((await rawRequest(port, 'GET /m HTTP/1.1\r\nHost: site')).body, 'host=site url=/m body= ');
      for (let i = 0; i < 2; i++) assert.equal((await rawRequest(port, `GET /m HTTP/1.1\r\nHost: ${host}`)).headers['x-cache'], 'PASS', host);
    }
    assert.equal(renders(), 1 + 4);
  });
});

describe('query normalization: the handler sees the form the key represents', () => {
  test('a raw <script> query is never served to a victim who sent it percent-encoded', async () => {
    const { port } = await reflecting();
    await rawRequest(port, 'GET /q?x=<script>&a=1 HTTP/1.1\r\nHost: site');
    const victim = await rawRequest(port, 'GET /q?a=1&x=%3Cscript%3E HTTP/1.1\r\nHost: site');
    assert.doesNotMatch(victim.body, /<script>/);
    assert.equal(victim.body, 'host=site url=/q?a=1&x=%3Cscript%3E body= ');
  });

  test('ignored parameters never reach a render whose response is stored', async () => {
    const { port, renders } = await reflecting({ ignoreUrlParams: ['utm_*'] });
    const attack = await rawRequest(port, 'GET /c?utm_source=<b>owned</b>&id=1 HTTP/1.1\r\nHost: site');
    assert.equal(attack.body, 'host=site url=/c?id=1 body= ');
    const victim = await rawRequest(port, 'GET /c?id=1 HTTP/1.1\r\nHost: site');
    assert.equal(victim.headers['x-cache'], 'HIT');
    assert.equal(victim.body, 'host=site url=/c?id=1 body= ');
    assert.equal(renders(), 1);
  });

  test('Express sees the normalized query in req.url, req.originalUrl and req.query', async () => {
    const cache = createCache();
    tracked.caches.push(cache);
    const app = express();
    app.use(cache.middleware());
    app.get('/e', (req, res) => {
      res.set('cache-control', 'public, max-age=60').send(`${req.originalUrl} ${JSON.stringify(req.query)}`);
    });
    const server = await listen(app);
    tracked.servers.push(server);
    await rawRequest(server.port, 'GET /e?x=<i>&b=2 HTTP/1.1\r\nHost: site');
    const victim = await rawRequest(server.port, 'GET /e?b=2&x=%3Ci%3E HTTP/1.1\r\nHost: site');
    assert.equal(victim.body, '/e?b=2&x=%3Ci%3E {"b":"2","x":"<i>"}');
  });

  test('Koa sees the normalized query in ctx.url and ctx.href', async () => {
    const cache = createCache();
    tracked.caches.push(cache);
    const app = new Koa();
    app.use(cache.koa());
    app.use((ctx) => {
      ctx.set('cache-control', 'public, max-age=60');
      ctx.body = `${ctx.url} ${ctx.href}`;
    });
    const server = await listen(app.callback());
    tracked.servers.push(server);
    await rawRequest(server.port, 'GET /k?x=<i>&b=2 HTTP/1.1\r\nHost: site');
    const victim = await rawRequest(server.port, 'GET /k?b=2&x=%3Ci%3E HTTP/1.1\r\nHost: site');
    assert.equal(victim.body, '/k?b=2&x=%3Ci%3E http://site/k?b=2&x=%3Ci%3E');
  });
});

describe('GET or HEAD with a body', () => {
  for (const [name, head, body] of [
    ['Content-Length', 'Content-Length: 5', 'evil!'],
    ['chunked', 'Transfer-Encoding: chunked', '5\r\nevil!\r\n0\r\n\r\n'],
  ] as const) {
    test(`a GET with a body (${name}) is passed and its render never stored`, async () => {
      const { port, renders } = await reflecting();
      const attack = await rawRequest(port, `GET /body HTTP/1.1\r\nHost: site\r\n${head}`, body);
      assert.equal(attack.headers['x-cache'], 'PASS');
      assert.equal(attack.body, 'host=site url=/body body=evil! ');
      const victim = await rawRequest(port, 'GET /body HTTP/1.1\r\nHost: site');
      assert.equal(victim.body, 'host=site url=/body body= ');
      assert.equal(renders(), 2);
    });
  }

  test('a HEAD with a body is passed too', async () => {
    const { port, renders } = await reflecting();
    const attack = await rawRequest(port, 'HEAD /hb HTTP/1.1\r\nHost: site\r\nContent-Length: 5', 'evil!');
    assert.equal(attack.headers['x-cache'], 'PASS');
    const victim = await rawRequest(port, 'GET /hb HTTP/1.1\r\nHost: site');
    assert.equal(victim.body, 'host=site url=/hb body= ');
    assert.equal(renders(), 2);
  });
});

describe('unkeyed forwarding headers', () => {
  const reflected = [
    'x-forwarded-for',
    'x-real-ip',
    'x-original-host',
    'x-forwarded-uri',
    'x-forwarded-path',
    'x-original-uri',
    'true-client-ip',
    'x-client-ip',
    'cf-connecting-ip',
    'x-middleware-prefetch',
  ];
  test('none of them reaches a render whose response is stored', async () => {
    const { port, renders } = await reflecting();
    for (const name of reflected) {
      await request(`http://127.0.0.1:${port}/fw/${name}`, { headers: { [name]: 'evil.example' } });
      const victim = await request(`http://127.0.0.1:${port}/fw/${name}`);
      assert.equal(victim.headers['x-cache'], 'HIT', name);
      assert.doesNotMatch(victim.body, /evil/, name);
    }
    assert.equal(renders(), reflected.length);
  });

  test('Express trust proxy: req.ip of a stored render is never the attacker-chosen address', async () => {
    const cache = createCache();
    tracked.caches.push(cache);
    const app = express();
    app.set('trust proxy', true);
    app.use(cache.middleware());
    app.get('/ip', (req, res) => void res.set('cache-control', 'public, max-age=60').send(`ip=${req.ip} host=${req.hostname}`));
    const server = await listen(app);
    tracked.servers.push(server);
    await request(`${server.url}/ip`, { headers: { 'x-forwarded-for': '6.6.6.6', 'x-forwarded-host': 'evil.example' } });
    const victim = await request(`${server.url}/ip`);
    assert.equal(victim.headers['x-cache'], 'HIT');
    assert.doesNotMatch(victim.body, /6\.6\.6\.6|evil/);
  });
});

describe('Host case, default port and trailing dot (issue 19)', () => {
  test('an origin that matches virtual hosts exactly renders every spelling as Host: site.test; no 404 reaches site.test', async () => {
    let renders = 0;
    const seen: string[] = [];
    const cache = createCache();
    tracked.caches.push(cache);
    // A name-based virtual host as nginx or Apache matches it: exactly, anything else is 404.
    const server = await listen(
      cache.wrap((req, res) => {
        renders++;
        seen.push(String(req.headers.host));
        const ok = req.headers.host === 'site.test';
        res.writeHead(ok ? 200 : 404, { 'cache-control': 'public, max-age=60', 'content-type': 'text/plain' });
        res.end(ok ? 'the site' : 'no such site');
      }),
    );
    tracked.servers.push(server);
    for (const host of ['SITE.TEST', 'site.test:80', 'site.test.', 'Site.Test.:80']) {
      const r = await request(`${server.url}/home`, { headers: { host } });
      assert.equal(r.status, 200, host);
      assert.equal(r.body, 'the site', host);
    }
    const victim = await request(`${server.url}/home`, { headers: { host: 'site.test' } });
    assert.equal(victim.status, 200);
    assert.equal(victim.body, 'the site');
    assert.equal(victim.headers['x-cache'], 'HIT');
    // One render, and it saw the normalized Host.
    assert.equal(renders, 1);
    assert.deepEqual(seen, ['site.test']);
    // Written on the wire by hand, as a scanner sends it.
    const raw = await rawRequest(server.port, 'GET /raw HTTP/1.1\r\nHost: SITE.test.');
    assert.equal(raw.status, 200);
    assert.equal(raw.body, 'the site');
  });
});
