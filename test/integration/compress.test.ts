/**
 * Stored compressed variants (`options.compress`): made once in the background when stored, kept
 * in every tier, negotiated per hit by Accept-Encoding q-values; never for what came encoded,
 * already-compressed types or no-transform; suffixed ETags, right Content-Length, Range on the
 * identity body.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { describe, test } from 'node:test';
import { brotliDecompressSync, gunzipSync, gzipSync } from 'node:zlib';
import { chooseCoding } from '../../src/compress/negotiate.js';
import { COMPRESS_DEFAULTS, ZSTD_AVAILABLE } from '../../src/compress/settings.js';
import { suffixTag } from '../../src/compress/views.js';
import { createCache, DEFAULTS, MemoryStore, type CacheStore, type Entry } from '../../src/index.js';
import { closedAfterFile, listen, request, sleep } from '../helpers/http.js';

const tracked = closedAfterFile();
const PAGE = `<!doctype html><html><body>${'<p>Some repetitive page text that compresses well.</p>\n'.repeat(400)}</body></html>`;

async function until(what: string, check: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** A cache with compression in front of a handler that counts renders. */
async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void, options: Parameters<typeof createCache>[0] = { compress: true }) {
  const cache = createCache(options);
  tracked.caches.push(cache);
  const counts = { renders: 0 };
  const server = await listen(cache.wrap((req, res) => {
    counts.renders++;
    handler(req, res);
  }));
  tracked.servers.push(server);
  return { cache, url: server.url, counts };
}

const html = (_req: IncomingMessage, res: ServerResponse): void => {
  res.setHeader('content-type', 'text/html; charset=utf-8');
  res.setHeader('cache-control', 'public, max-age=60');
  res.setHeader('etag', '"v1"');
  res.end(PAGE);
};

describe('Accept-Encoding negotiation', () => {
  const both = ['br', 'gzip'] as const;
  test('q-values, server order on ties, identity rules', () => {
    assert.equal(chooseCoding(undefined, both), 'identity');
    assert.equal(chooseCoding('', both), 'identity');
    assert.equal(chooseCoding('gzip, deflate, br', both), 'br', 'a tie goes to the server order');
    assert.equal(chooseCoding('gzip', both), 'gzip');
    assert.equal(chooseCoding('br;q=0.5, gzip;q=0.8', both), 'gzip');
    assert.equal(chooseCoding('br;q=0, gzip', both), 'gzip');
    assert.equal(chooseCoding('x-gzip', ['gzip']), 'gzip');
    assert.equal(chooseCoding('deflate', both), 'identity');
    assert.equal(chooseCoding('*', both), 'br');
    assert.equal(chooseCoding('*;q=0', both), 'identity', 'nothing acceptable: identity is all there is');
    assert.equal(chooseCoding('gzip;q=0.5, identity;q=0', both), 'gzip');
    assert.equal(chooseCoding('gzip;q=0.4, identity;q=0.5', both), 'identity', 'identity preferred');
    assert.equal(chooseCoding('GZIP;Q=1', both), 'gzip');
  });

  test('a compressed representation never carries the identity ETag', () => {
    assert.equal(suffixTag('"v1"', 'br'), '"v1-br"');
    assert.equal(suffixTag('W/"v1"', 'gzip'), 'W/"v1-gzip"');
  });
});

describe('stored compressed variants', () => {
  test('compressed once in the background; hits get the best accepted coding with its own length and ETag', async () => {
    const { cache, url, counts } = await serve(html);
    const miss = await request(`${url}/page`, { headers: { 'accept-encoding': 'br, gzip' } });
    assert.equal(miss.headers['x-cache'], 'MISS');
    assert.equal(miss.headers['content-encoding'], undefined, 'the render itself streams as written');
    await until('the variants', () => cache.stats().compressions === 1);

    const br = await request(`${url}/page`, { headers: { 'accept-encoding': 'gzip, deflate, br' } });
    assert.equal(br.headers['x-cache'], 'HIT');
    assert.equal(br.headers['content-encoding'], 'br');
    assert.equal(Number(br.headers['content-length']), br.raw.length);
    assert.ok(br.raw.length < PAGE.length / 5, `br is small (${br.raw.length})`);
    assert.equal(brotliDecompressSync(br.raw).toString(), PAGE);
    assert.equal(br.headers.etag, '"v1-br"');
    assert.match(String(br.headers.vary), /accept-encoding/i);

    const gz = await request(`${url}/page`, { headers: { 'accept-encoding': 'br;q=0.1, gzip' } });
    assert.equal(gz.headers['content-encoding'], 'gzip');
    assert.equal(gunzipSync(gz.raw).toString(), PAGE);
    assert.equal(gz.headers.etag, '"v1-gzip"');
    assert.equal(Number(gz.headers['content-length']), gz.raw.length);

    const plain = await request(`${url}/page`);
    assert.equal(plain.headers['content-encoding'], undefined);
    assert.equal(plain.body, PAGE);
    assert.equal(plain.headers.etag, '"v1"');
    assert.equal(Number(plain.headers['content-length']), Buffer.byteLength(PAGE));
    assert.match(String(plain.headers.vary), /accept-encoding/i, 'identity varies too');
    assert.doesNotMatch(String(plain.headers.vary), /user-agent/i);

    for (let i = 0; i < 10; i++) await request(`${url}/page`, { headers: { 'accept-encoding': 'br' } });
    assert.equal(cache.stats().compressions, 1, 'not per hit');
    assert.equal(counts.renders, 1);
  });

  test('a page small enough to be kept packed in memory (2 KB) gets its variants too', async () => {
    const small = `<p>${'short repetitive text '.repeat(90)}</p>`;
    assert.ok(small.length > 1024 && small.length < 4096);
    const { cache, url, counts } = await serve((_req, res) => {
      res.setHeader('content-type', 'text/html; charset=utf-8');
      res.setHeader('cache-control', 'public, max-age=60');
      res.end(small);
    });
    await request(`${url}/small`, { headers: { 'accept-encoding': 'gzip' } });
    await until('the variants', () => cache.stats().compressions === 1);
    const gz = await request(`${url}/small`, { headers: { 'accept-encoding': 'gzip' } });
    assert.equal(gz.headers['x-cache'], 'HIT');
    assert.equal(gz.headers['content-encoding'], 'gzip');
    assert.equal(gunzipSync(gz.raw).toString(), small);
    assert.equal(counts.renders, 1);
  });

  test('HEAD, Range, conditional requests', async () => {
    const { cache, url } = await serve(html);
    await request(`${url}/p`);
    await until('the variants', () => cache.stats().compressions === 1);
    const head = await request(`${url}/p`, { method: 'HEAD', headers: { 'accept-encoding': 'br' } });
    assert.equal(head.headers['content-encoding'], 'br');
    assert.equal(head.raw.length, 0);
    const br = await request(`${url}/p`, { headers: { 'accept-encoding': 'br' } });
    assert.equal(head.headers['content-length'], String(br.raw.length));

    const range = await request(`${url}/p`, { headers: { 'accept-encoding': 'br, gzip', range: 'bytes=0-14' } });
    assert.equal(range.status, 206);
    assert.equal(range.headers['content-encoding'], undefined, 'ranges are of the identity body');
    assert.equal(range.body, PAGE.slice(0, 15));

    const same = await request(`${url}/p`, { headers: { 'accept-encoding': 'br', 'if-none-match': '"v1-br"' } });
    assert.equal(same.status, 304);
    assert.equal(same.headers.etag, '"v1-br"');
    const identityTag = await request(`${url}/p`, { headers: { 'accept-encoding': 'br', 'if-none-match': '"v1"' } });
    assert.equal(identityTag.status, 200, 'the identity ETag does not validate the br body');
    assert.equal(identityTag.headers['content-encoding'], 'br');
  });

  test('a revalidated entry (304) keeps its variants and sends the 304\'s new headers with them', async () => {
    let version = 0;
    const { cache, url, counts } = await serve((req, res) => {
      version++;
      res.setHeader('cache-control', 'public, max-age=1');
      res.setHeader('x-version', String(version));
      res.setHeader('etag', '"v1"');
      if (req.headers['if-none-match'] === '"v1"') {
        res.statusCode = 304;
        return void res.end();
      }
      res.setHeader('content-type', 'text/html');
      res.end(PAGE);
    });
    await request(`${url}/r`);
    await until('the variants', () => cache.stats().compressions === 1);
    assert.equal((await request(`${url}/r`, { headers: { 'accept-encoding': 'br' } })).headers['x-version'], '1');
    await sleep(1100);
    const revalidated = await request(`${url}/r`, { headers: { 'accept-encoding': 'br' } });
    assert.equal(revalidated.status, 200);
    assert.equal(counts.renders, 2, 'one revalidation');
    const after = await request(`${url}/r`, { headers: { 'accept-encoding': 'br' } });
    assert.equal(after.headers['x-cache'], 'HIT');
    assert.equal(after.headers['content-encoding'], 'br');
    assert.equal(after.headers['x-version'], '2', 'the br representation carries the merged headers');
    assert.equal(brotliDecompressSync(after.raw).toString(), PAGE);
  });

  test('never compressed: already encoded, compressed types, no-transform, small bodies', async () => {
    const gzipped = gzipSync(PAGE);
    const { cache, url } = await serve((req, res) => {
      res.setHeader('cache-control', req.url === '/nt' ? 'public, max-age=60, no-transform' : 'public, max-age=60');
      if (req.url === '/encoded') {
        res.setHeader('content-type', 'text/html');
        res.setHeader('content-encoding', 'gzip');
        return void res.end(gzipped);
      }
      if (req.url === '/png') {
        res.setHeader('content-type', 'image/png');
        return void res.end(Buffer.alloc(50_000, 7));
      }
      res.setHeader('content-type', 'text/plain');
      res.end(req.url === '/small' ? 'tiny' : PAGE);
    });
    for (const path of ['/encoded', '/png', '/nt', '/small']) await request(url + path);
    await sleep(200);
    assert.equal(cache.stats().compressions, 0);
    const encoded = await request(`${url}/encoded`, { headers: { 'accept-encoding': 'br' } });
    assert.equal(encoded.headers['content-encoding'], 'gzip');
    assert.ok(encoded.raw.equals(gzipped), 'sent exactly as the origin encoded it');
    const png = await request(`${url}/png`, { headers: { 'accept-encoding': 'br, gzip' } });
    assert.equal(png.headers['content-encoding'], undefined);
    assert.equal(png.raw.length, 50_000);
  });

  test('the variants are kept in every tier: a new node over the same lower tier serves them without compressing', async () => {
    const lower = new Map<string, Entry>();
    const store: CacheStore = {
      name: 'map',
      get: (k) => lower.get(k),
      set: (k, e) => void lower.set(k, e),
      delete: (k) => void lower.delete(k),
    };
    const first = await serve(html, { compress: { encodings: ['gzip'] }, stores: [store] });
    await request(`${first.url}/tiered`, { headers: { host: 'site.test' } });
    await until('the variants', () => first.cache.stats().compressions === 1);
    await until('the lower tier to hold them', () => [...lower.values()].some((e) => e.encoded?.gzip !== undefined));
    const second = await serve(html, { compress: { encodings: ['gzip'] }, stores: [new MemoryStore({ maxSize: 1 << 20 }), store] });
    const hit = await request(`${second.url}/tiered`, { headers: { host: 'site.test', 'accept-encoding': 'gzip' } });
    assert.equal(hit.headers['x-cache'], 'HIT');
    assert.equal(hit.headers['content-encoding'], 'gzip');
    assert.equal(gunzipSync(hit.raw).toString(), PAGE);
    assert.equal(second.counts.renders, 0);
    assert.equal(second.cache.stats().compressions, 0);
  });
});

describe('options.compress', () => {
  test('bad values are refused naming the option', () => {
    assert.throws(() => createCache({ compress: 'yes' as never }), { name: 'TypeError', message: /options\.compress to be a boolean or an object, got 'yes'/ });
    assert.throws(() => createCache({ compress: { encodings: ['lz4' as never] } }), { name: 'TypeError', message: /options\.compress\.encodings\[0\] to be 'br', 'gzip' or 'zstd', got 'lz4'/ });
    assert.throws(() => createCache({ compress: { encodings: ['br', 'br'] } }), { name: 'RangeError', message: /encodings\[1\] to be listed once/ });
    assert.throws(() => createCache({ compress: { encodings: ['br'], level: { br: 12 } } }), { name: 'RangeError', message: /options\.compress\.level\.br .* got 12/ });
    assert.throws(() => createCache({ compress: { encodings: ['br'], minSize: -1 } }), { name: 'RangeError', message: /options\.compress\.minSize/ });
    assert.throws(() => createCache({ compress: { encodings: ['br'], types: ['html'] } }), { name: 'TypeError', message: /options\.compress\.types\[0\] to be a media type/ });
    assert.throws(() => createCache({ compress: { encoding: ['br'] } as never }), { name: 'TypeError', message: 'unknown option options.compress.encoding' });
    if (!ZSTD_AVAILABLE) assert.throws(() => createCache({ compress: { encodings: ['zstd'] } }), { name: 'RangeError', message: /zstd needs Node 22\.15/ });
  });

  test('the documented defaults of CompressOptions are COMPRESS_DEFAULTS, which is DEFAULTS.compress', () => {
    assert.equal(DEFAULTS.compress, COMPRESS_DEFAULTS);
    const source = readFileSync(new URL('../../src/compress/settings.ts', import.meta.url), 'utf8');
    const body = source.slice(source.indexOf('export interface CompressOptions {'), source.indexOf('\n}', source.indexOf('export interface CompressOptions {')));
    // Each field: its doc comment's `@default <literal>` line, then the field name.
    const documented = new Map<string, string>();
    for (const m of body.matchAll(/\/\*\*([\s\S]*?)\*\/\s*(\w+)\?:/g)) {
      const line = /@default ([^\n]*)/.exec(m[1]!);
      documented.set(m[2]!, line?.[1]?.trim() ?? '');
    }
    assert.deepEqual([...documented.keys()].sort(), Object.keys(COMPRESS_DEFAULTS).sort());
    for (const [name, text] of documented) {
      const value: unknown = JSON.parse(text.replace(/'/g, '"').replace(/(\w+):/g, '"$1":'));
      assert.deepEqual(value, JSON.parse(JSON.stringify((COMPRESS_DEFAULTS as Record<string, unknown>)[name])), `compress.${name}`);
    }
  });
});
