/**
 * Stored bytes must be the bytes sent: a handler that reuses its Buffer, or writes a Uint8Array
 * view of memory it overwrites, once each write callback ran, must not corrupt the stored entry
 * (nor, with includes on, the held response). Judged on the wire: the victim's HIT equals what
 * the first client received and what the origin meant to send.
 */
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { describe, test } from 'node:test';
import { createCache, type CacheOptions } from '../../src/index.js';
import { closedAfterFile, listen, request } from '../helpers/http.js';

const tracked = closedAfterFile();
const PARTS = ['alpha-', 'bravo-', 'charlie-', 'delta-'];
const EXPECTED = PARTS.join('');

/** Writes each part through `scratch`, overwriting it with '#' as soon as the write callback ran. */
async function writeReusing(res: ServerResponse, scratch: Uint8Array): Promise<void> {
  for (const part of PARTS) {
    scratch.fill(0);
    Buffer.from(scratch.buffer, scratch.byteOffset, scratch.byteLength).write(part);
    const view = scratch.subarray(0, Buffer.byteLength(part));
    await new Promise<void>((resolve, reject) => res.write(view, (error) => (error ? reject(error) : resolve())));
    view.fill(35); // '#': the handler reuses its memory for the next chunk
  }
  res.end();
}

async function serve(scratch: () => Uint8Array, options: CacheOptions = {}, type = 'text/plain'): Promise<{ url: string; renders: () => number }> {
  let renders = 0;
  const cache = createCache(options);
  tracked.caches.push(cache);
  const server = await listen(
    cache.wrap(async (_req, res) => {
      renders++;
      res.setHeader('cache-control', 'public, max-age=60');
      res.setHeader('content-type', type);
      await writeReusing(res, scratch());
    }),
  );
  tracked.servers.push(server);
  return { url: server.url, renders: () => renders };
}

describe('capture copies what it keeps', () => {
  test('a reused Buffer: the stored entry is every chunk as sent, not the last one repeated', async () => {
    const { url, renders } = await serve(() => Buffer.alloc(16));
    const first = await request(`${url}/reuse`);
    assert.equal(first.body, EXPECTED);
    const hit = await request(`${url}/reuse`);
    assert.equal(hit.headers['x-cache'], 'HIT');
    assert.equal(hit.body, EXPECTED);
    assert.equal(renders(), 1);
  });

  test('a Uint8Array view into a shared ArrayBuffer', async () => {
    const backing = new ArrayBuffer(64);
    const { url } = await serve(() => new Uint8Array(backing, 8, 16));
    assert.equal((await request(`${url}/view`)).body, EXPECTED);
    const hit = await request(`${url}/view`);
    assert.equal(hit.headers['x-cache'], 'HIT');
    assert.equal(hit.body, EXPECTED);
  });

  test('with includes on, a held HTML response is sent and stored as written', async () => {
    const { url } = await serve(() => Buffer.alloc(16), { includes: true }, 'text/html');
    const first = await request(`${url}/held`);
    assert.equal(first.body, EXPECTED);
    const hit = await request(`${url}/held`);
    assert.equal(hit.headers['x-cache'], 'HIT');
    assert.equal(hit.body, EXPECTED);
  });
});
