/**
 * Accept-Encoding in variant keys and in Vary: with `Vary: Accept-Encoding` from the origin, the
 * variant is keyed by the coding a response is sent in (br / gzip / zstd / identity), so spellings
 * of one preference share one render, and a client only ever gets a coding it accepts; every
 * response of an entry that may get compressed variants (the MISS, the first HITs) says
 * `Vary: Accept-Encoding`.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { describe, test } from 'node:test';
import { brotliDecompressSync, gunzipSync, gzipSync } from 'node:zlib';
import { createCache } from '../../src/index.js';
import { closedAfterFile, listen, request, type Reply } from '../helpers/http.js';

const tracked = closedAfterFile();
const PAGE = `<!doctype html><html><body>${'<p>Some repetitive page text that compresses well.</p>\n'.repeat(400)}</body></html>`;

/** Spellings of "br and gzip, equally": one preference. */
const SPELLINGS = ['gzip, br', 'br,gzip', 'br;q=1, gzip', 'gzip;q=1.0,br', ' BR , GZip '];

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void, options: Parameters<typeof createCache>[0]) {
  const cache = createCache(options);
  tracked.caches.push(cache);
  const counts = { renders: 0 };
  const server = await listen(
    cache.wrap((req, res) => {
      counts.renders++;
      handler(req, res);
    }),
  );
  tracked.servers.push(server);
  return { cache, url: server.url, counts };
}

/** The body as the client decodes it by its Content-Encoding. */
function decoded(r: Reply): string {
  const coding = r.headers['content-encoding'];
  if (coding === 'br') return brotliDecompressSync(r.raw).toString();
  if (coding === 'gzip') return gunzipSync(r.raw).toString();
  assert.equal(coding, undefined, `an unexpected coding ${String(coding)}`);
  return r.body;
}

const varies = (r: Reply): boolean => /(^|,)\s*accept-encoding\s*(,|$)/i.test(String(r.headers.vary ?? ''));

describe('Vary: Accept-Encoding keyed by the coding sent', () => {
  test('an identity origin with compression on: five spellings, one render, each gets br', async () => {
    const { cache, url, counts } = await serve(
      (_req, res) => {
        res.setHeader('content-type', 'text/html');
        res.setHeader('cache-control', 'max-age=60');
        res.setHeader('vary', 'Accept-Encoding');
        res.end(PAGE);
      },
      { compress: { encodings: ['br', 'gzip'] } },
    );
    const first = await request(`${url}/p`, { headers: { 'accept-encoding': SPELLINGS[0]! } });
    assert.equal(first.headers['x-cache'], 'MISS');
    assert.equal(await until(() => cache.stats().compressions === 1), true);
    for (const spelling of SPELLINGS) {
      const r = await request(`${url}/p`, { headers: { 'accept-encoding': spelling } });
      assert.equal(r.headers['x-cache'], 'HIT', spelling);
      assert.equal(r.headers['content-encoding'], 'br', spelling);
      assert.equal(decoded(r), PAGE);
      assert.ok(varies(r), spelling);
    }
    assert.equal(counts.renders, 1, 'one variant for five spellings');
    // Another preference is another variant: gzip only, then no Accept-Encoding at all.
    const gz = await request(`${url}/p`, { headers: { 'accept-encoding': 'gzip' } });
    assert.equal(decoded(gz), PAGE);
    assert.notEqual(gz.headers['content-encoding'], 'br');
    const plain = await request(`${url}/p`);
    assert.equal(plain.headers['content-encoding'], undefined);
    assert.equal(plain.body, PAGE);
    assert.equal(counts.renders, 3);
    for (const spelling of ['gzip;q=0.5, deflate', 'x-gzip']) assert.equal((await request(`${url}/p`, { headers: { 'accept-encoding': spelling } })).headers['x-cache'], 'HIT', spelling);
    assert.equal(counts.renders, 3);
  });

  test('an origin that gzips by itself: its gzip entry is shared by every gzip client, never sent to others', async () => {
    const gzipped = gzipSync(PAGE);
    const { url, counts } = await serve(
      (req, res) => {
        res.setHeader('content-type', 'text/html');
        res.setHeader('cache-control', 'max-age=60');
        res.setHeader('vary', 'Accept-Encoding');
        if (/gzip/i.test(String(req.headers['accept-encoding'] ?? ''))) {
          res.setHeader('content-encoding', 'gzip');
          res.end(gzipped);
        } else res.end(PAGE);
      },
      {},
    );
    for (const spelling of SPELLINGS) {
      const r = await request(`${url}/z`, { headers: { 'accept-encoding': spelling } });
      assert.equal(r.headers['content-encoding'], 'gzip', spelling);
      assert.equal(decoded(r), PAGE);
    }
    assert.equal(counts.renders, 1, 'the gzip entry answers every spelling that accepts gzip');
    for (const spelling of ['br', 'identity', 'gzip;q=0, br']) {
      const r = await request(`${url}/z`, { headers: { 'accept-encoding': spelling } });
      assert.equal(r.headers['content-encoding'], undefined, `${spelling} does not accept gzip`);
      assert.equal(r.body, PAGE);
    }
    const none = await request(`${url}/z`);
    assert.equal(none.headers['content-encoding'], undefined);
    assert.equal(none.headers['x-cache'], 'HIT');
    assert.equal(counts.renders, 2, 'one gzip variant, one identity variant');
  });
});

describe('Vary: Accept-Encoding on every response of a compressible entry', () => {
  test('the MISS and the HITs before and after the variants exist say it; with the origin\'s Vary kept', async () => {
    const { cache, url } = await serve(
      (_req, res) => {
        res.setHeader('content-type', 'text/html');
        res.setHeader('cache-control', 'max-age=60');
        res.setHeader('vary', 'Cookie');
        res.end(PAGE);
      },
      { compress: { encodings: ['br', 'gzip'] } },
    );
    const miss = await request(`${url}/v`, { headers: { 'accept-encoding': 'br' } });
    assert.equal(miss.headers['x-cache'], 'MISS');
    assert.ok(varies(miss), `MISS Vary: ${String(miss.headers.vary)}`);
    assert.match(String(miss.headers.vary), /cookie/i);
    const early = await request(`${url}/v`, { headers: { 'accept-encoding': 'br' } });
    assert.equal(early.headers['x-cache'], 'HIT');
    assert.ok(varies(early), `first HIT Vary: ${String(early.headers.vary)}`);
    assert.equal(await until(() => cache.stats().compressions === 1), true);
    const late = await request(`${url}/v`, { headers: { 'accept-encoding': 'br' } });
    assert.equal(late.headers['content-encoding'], 'br');
    assert.ok(varies(late));
    assert.equal(String(late.headers.vary).match(/accept-encoding/gi)?.length, 1, 'named once');
  });

  test('an entry that is never compressed (an image, a small body) does not say it', async () => {
    const { url } = await serve(
      (req, res) => {
        res.setHeader('cache-control', 'max-age=60');
        if (req.url === '/img') {
          res.setHeader('content-type', 'image/png');
          res.end(Buffer.alloc(4096, 1));
        } else {
          res.setHeader('content-type', 'text/plain');
          res.setHeader('content-length', '5');
          res.end('small');
        }
      },
      { compress: { encodings: ['br', 'gzip'] } },
    );
    for (const path of ['/img', '/img', '/small', '/small']) assert.equal(varies(await request(`${url}${path}`, { headers: { 'accept-encoding': 'br' } })), false, path);
  });
});

/** Waits (at most 10 s) until `check` holds. */
async function until(check: () => boolean): Promise<boolean> {
  const deadline = Date.now() + 10_000;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
  return true;
}
