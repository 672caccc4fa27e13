/**
 * The hit path, by behaviour: a fresh hit from memory is written before the wrapped handler
 * returns (no promise, no later tick), and the keys it remembers between requests (src/key.ts)
 * never answer one host's or one path's request with another's page.
 */
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { after, describe, test } from 'node:test';
import { createCache, type StrataCache } from '../../src/index.js';
import { listen, request, type Running } from '../helpers/http.js';

const running: Running[] = [];
const caches: StrataCache[] = [];
after(async () => {
  await Promise.all(running.map((r) => r.close()));
  await Promise.all(caches.map((c) => c.close()));
});

/** A cached origin answering `<host> <path> #<render>`, and how it answered each request. */
async function site(options: Parameters<typeof createCache>[0] = {}): Promise<{ url: string; renders: () => number; endedOnReturn: boolean[] }> {
  let renders = 0;
  const endedOnReturn: boolean[] = [];
  const cache = createCache(options);
  caches.push(cache);
  const wrapped = cache.wrap((req, res) => {
    renders++;
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=3600' });
    res.end(`${req.headers.host ?? ''} ${req.url ?? ''} #${renders}`);
  });
  const server = await listen((req, res: ServerResponse) => {
    wrapped(req, res);
    // Whether the whole response was handed to Node by the time the wrapped handler returned.
    endedOnReturn.push(res.writableEnded);
  });
  running.push(server);
  return { url: server.url, renders: () => renders, endedOnReturn };
}

describe('hit path', () => {
  test('a fresh hit from memory is written before the wrapped handler returns', async () => {
    const s = await site();
    const first = await request(`${s.url}/page`);
    const second = await request(`${s.url}/page`);
    assert.equal(second.body, first.body);
    assert.equal(second.headers['x-cache'], 'HIT');
    assert.equal(s.renders(), 1);
    // The miss renders after a lookup of the lower tiers (a promise); the hit does not wait for anything.
    assert.equal(s.endedOnReturn.length, 2);
    assert.equal(s.endedOnReturn[1], true);
  });

  test('interleaved hosts and paths each get their own page, rendered once', async () => {
    const s = await site();
    const hosts = ['one.test', 'TWO.test', 'two.test:80'];
    const paths = ['/', '/a', '/b', '/page/1', '/page/10', '/page/2'];
    const seen = new Map<string, string>();
    for (let round = 0; round < 3; round++) {
      for (const path of paths) {
        for (const host of hosts) {
          const reply = await request(`${s.url}${path}`, { headers: { host } });
          const site = host === 'one.test' ? 'one.test' : 'two.test';
          assert.match(reply.body, new RegExp(`^\\S+ ${path.replace(/\//g, '\\/')} #\\d+$`));
          // TWO.test and two.test:80 are one origin: one page, whichever of them rendered it.
          const before = seen.get(`${site} ${path}`);
          if (before === undefined) seen.set(`${site} ${path}`, reply.body);
          else assert.equal(reply.body, before, `${host}${path} in round ${round}`);
        }
      }
    }
    assert.equal(s.renders(), 2 * paths.length);
  });
});
