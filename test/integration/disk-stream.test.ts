/**
 * Large bodies on the disk tier are streamed from their file to the client, never read whole
 * (issue 12): what a client receives (every byte, Range, 304, HEAD, a compressed variant, a
 * stale copy when the origin fails), how much the process read from disk while a client paused,
 * that no file stays open, and that a damaged body is cut off and removed, never served whole.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeSync } from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { createCache, diskStore, memoryStore, type CacheOptions, type DiskStore } from '../../src/index.js';
import { listen, request, sleep, type Reply } from '../helpers/http.js';

const MiB = 1024 * 1024;
const BIG = randomBytes(24 * MiB);
const TEXT = Buffer.from('<p>stratacache streams what it cannot hold.</p>\n'.repeat(64 * 1024));
const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

interface Origin {
  renders: number;
  failing: boolean;
  cacheControl: string;
}

/** A node: a cache over a disk tier in `dir` (memory keeps at most 1 MiB per entry) in front of an origin. */
async function node(dir: string, origin: Origin, extra: Partial<CacheOptions> = {}) {
  const disk = diskStore({ dir, maxSize: 512 * MiB, streamThreshold: MiB, rescanInterval: 0 });
  const cache = createCache({
    key: { host: 'site' },
    maxEntrySize: 64 * MiB,
    stores: [memoryStore({ maxSize: 8 * MiB, maxEntrySize: MiB }), disk],
    ...extra,
  });
  const errors: Error[] = [];
  cache.on('error', (error: Error) => errors.push(error));
  const running = await listen(
    cache.wrap((req: IncomingMessage, res: ServerResponse) => {
      origin.renders++;
      if (origin.failing) {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end('down');
        return;
      }
      const text = req.url!.startsWith('/text');
      res.writeHead(200, { 'content-type': text ? 'text/html' : 'application/octet-stream', 'cache-control': origin.cacheControl, etag: '"v1"' });
      res.end(text ? TEXT : BIG);
    }),
  );
  return {
    cache,
    disk: disk as DiskStore,
    errors,
    url: running.url,
    get: (path: string, headers: Record<string, string> = {}): Promise<Reply> => request(running.url + path, { headers }),
    async close(): Promise<void> {
      await running.close();
      await cache.close();
    },
  };
}

/** Renders `path` once on a node of its own, so the next node finds it only on disk. */
async function storedOnDisk(path: string, origin: Origin, extra: Partial<CacheOptions> = {}): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'strata-stream-'));
  dirs.push(dir);
  const first = await node(dir, origin, extra);
  assert.equal((await first.get(path)).headers['x-cache'], 'MISS');
  if (extra.compress !== undefined) await until('the compressed variant', () => first.cache.stats().compressions === 1);
  await first.close();
  return dir;
}

async function until(what: string, check: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** Descriptors this process holds open on files under `dir`. */
function openFilesIn(dir: string): number {
  let n = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`).startsWith(dir)) n++;
    } catch {
      // closed while listing
    }
  }
  return n;
}

/** Bytes this process has read (files and sockets), from /proc/self/io. */
function bytesRead(): number {
  return Number(/rchar:\s*(\d+)/.exec(readFileSync('/proc/self/io', 'utf8'))![1]);
}

test('a large entry on disk is sent from its file: every byte, Content-Length, not promoted, no file left open', async () => {
  const origin: Origin = { renders: 0, failing: false, cacheControl: 'max-age=600' };
  const dir = await storedOnDisk('/big', origin);
  const n = await node(dir, origin);
  try {
    for (let i = 1; i <= 2; i++) {
      const hit = await n.get('/big');
      assert.equal(hit.status, 200);
      assert.equal(hit.headers['x-cache'], 'HIT');
      assert.equal(hit.headers['content-length'], String(BIG.length));
      assert.equal(sha(hit.raw), sha(BIG));
      // Larger than the memory tier's entry bound: each hit is streamed from the file again.
      assert.deepEqual({ whole: n.disk.stats().readsWhole, streamed: n.disk.stats().readsStreamed }, { whole: 0, streamed: i });
    }
    assert.equal(origin.renders, 1);
    await until('the file to be closed', () => openFilesIn(dir) === 0);
    assert.deepEqual(n.errors, []);
  } finally {
    await n.close();
  }
});

test('while the client pauses, the cache has read only a little of the file, not the whole body', async () => {
  const origin: Origin = { renders: 0, failing: false, cacheControl: 'max-age=600' };
  const dir = await storedOnDisk('/big', origin);
  const n = await node(dir, origin);
  try {
    const before = bytesRead();
    const received = await new Promise<number>((resolve, reject) => {
      const req = http.get(`${n.url}/big`, { agent: false }, (res) => {
        let got = 0;
        res.on('data', (chunk: Buffer) => {
          got += chunk.length;
          if (got >= MiB && !res.isPaused()) {
            res.pause();
            // The client takes nothing more for a while: back-pressure must reach the file.
            setTimeout(() => {
              resolve(got);
              req.destroy();
            }, 500);
          }
        });
      });
      req.on('error', (error) => ((error as NodeJS.ErrnoException).code === 'ECONNRESET' ? undefined : reject(error)));
    });
    const read = bytesRead() - before;
    // This process read the client's bytes off the socket and the server's off the disk. A body
    // read whole would be 24 MiB more; streamed, the file reads stop at the socket buffers.
    assert.ok(received >= MiB);
    assert.ok(read < received + 12 * MiB, `read ${read} bytes for ${received} received: the body was read whole`);
    await until('the file to be closed after the client left', () => openFilesIn(dir) === 0);
    assert.equal(origin.renders, 1);
  } finally {
    await n.close();
  }
});

test('Range, 304, HEAD and 416 on a streamed entry', async () => {
  const origin: Origin = { renders: 0, failing: false, cacheControl: 'max-age=600' };
  const dir = await storedOnDisk('/big', origin);
  const n = await node(dir, origin);
  try {
    const part = await n.get('/big', { range: 'bytes=1000-1999' });
    assert.equal(part.status, 206);
    assert.equal(part.headers['content-range'], `bytes 1000-1999/${BIG.length}`);
    assert.ok(part.raw.equals(BIG.subarray(1000, 2000)));
    const tail = await n.get('/big', { range: 'bytes=-10' });
    assert.equal(tail.status, 206);
    assert.ok(tail.raw.equals(BIG.subarray(BIG.length - 10)));
    const none = await n.get('/big', { range: `bytes=${BIG.length + 5}-` });
    assert.equal(none.status, 416);
    assert.equal(none.headers['content-range'], `bytes */${BIG.length}`);
    const same = await n.get('/big', { 'if-none-match': '"v1"' });
    assert.equal(same.status, 304);
    assert.equal(same.raw.length, 0);
    const head = await request(`${n.url}/big`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], String(BIG.length));
    assert.equal(head.raw.length, 0);
    assert.equal(n.disk.stats().readsStreamed, 5);
    assert.equal(origin.renders, 1);
    await until('every file to be closed', () => openFilesIn(dir) === 0);
  } finally {
    await n.close();
  }
});

test('a compressed variant kept on disk is streamed from its own section', async () => {
  const origin: Origin = { renders: 0, failing: false, cacheControl: 'max-age=600' };
  const dir = await storedOnDisk('/text', origin, { compress: { encodings: ['gzip'] } });
  const n = await node(dir, origin, { compress: { encodings: ['gzip'] } });
  try {
    const zipped = await n.get('/text', { 'accept-encoding': 'gzip' });
    assert.equal(zipped.headers['content-encoding'], 'gzip');
    assert.equal(zipped.headers['etag'], '"v1-gzip"');
    assert.ok(Number(zipped.headers['content-length']) < TEXT.length / 10);
    assert.ok(gunzipSync(zipped.raw).equals(TEXT));
    const plain = await n.get('/text');
    assert.equal(plain.headers['content-encoding'], undefined);
    assert.ok(plain.raw.equals(TEXT));
    assert.equal(n.disk.stats().readsStreamed, 2);
    assert.equal(origin.renders, 1);
    assert.equal(n.cache.stats().compressions, 0);
  } finally {
    await n.close();
  }
});

test('when the origin fails, a large stale copy on disk is served whole and right', async () => {
  const origin: Origin = { renders: 0, failing: false, cacheControl: 'max-age=1' };
  const dir = await storedOnDisk('/big', origin);
  await sleep(1100);
  origin.failing = true;
  const n = await node(dir, origin, { serveStaleOnError: true, staleIfError: 60_000 });
  try {
    const stale = await n.get('/big');
    assert.equal(stale.status, 200);
    assert.equal(stale.headers['x-cache'], 'STALE');
    assert.equal(sha(stale.raw), sha(BIG));
    assert.equal(origin.renders, 2);
    await until('the file to be closed', () => openFilesIn(dir) === 0);
  } finally {
    await n.close();
  }
});

test('a damaged body is cut off (never sent as whole), reported, removed, and rendered again', async () => {
  const origin: Origin = { renders: 0, failing: false, cacheControl: 'max-age=600' };
  const dir = await storedOnDisk('/big', origin);
  const n = await node(dir, origin);
  try {
    const path = n.disk.pathOf('site/big');
    const fd = openSync(path, 'r+');
    // A byte near the end of the file: inside the body.
    const { size } = statSync(path);
    writeSync(fd, Buffer.from([0xff ^ readFileSync(path)[size - 1000]!]), 0, 1, size - 1000);
    closeSync(fd);
    const cut = await new Promise<{ got: number; complete: boolean }>((resolve) => {
      http.get(`${n.url}/big`, { agent: false }, (res) => {
        let got = 0;
        res.on('data', (chunk: Buffer) => (got += chunk.length));
        res.on('end', () => resolve({ got, complete: res.complete }));
        res.on('aborted', () => resolve({ got, complete: false }));
        res.on('error', () => resolve({ got, complete: false }));
      }).on('error', () => resolve({ got: 0, complete: false }));
    });
    assert.equal(cut.complete, false, 'the damaged body ended as if complete');
    assert.ok(cut.got < BIG.length);
    await until('the damage to be reported', () => n.errors.some((e) => /stored body/.test(e.message)));
    await until('the damaged file to be removed', () => n.disk.size().entries === 0);
    const again = await n.get('/big');
    assert.equal(again.headers['x-cache'], 'MISS');
    assert.equal(sha(again.raw), sha(BIG));
    assert.equal(origin.renders, 2);
  } finally {
    await n.close();
  }
});
