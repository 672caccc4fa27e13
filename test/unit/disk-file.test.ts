/**
 * The disk tier's file format (`src/stores/disk-file.ts`): a digest per section, so a lookup can
 * check a large entry's metadata before sending anything and each body as it streams; files of
 * the earlier format, damaged metadata and truncated files are misses and are removed.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { Readable } from 'node:stream';
import { DiskStore } from '../../src/index.js';
import { makeEntry } from '../../src/testing.js';
import { access } from 'node:fs/promises';

const dirs: string[] = [];
after(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

async function store(streamThreshold = 0): Promise<DiskStore> {
  const dir = await mkdtemp(join(tmpdir(), 'strata-diskfile-'));
  dirs.push(dir);
  const s = new DiskStore({ dir, maxSize: 1 << 24, streamThreshold, rescanInterval: 0 });
  await s.ready();
  return s;
}

const gone = (path: string): Promise<boolean> => access(path).then(() => false, () => true);

async function drain(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

const BODY = Buffer.alloc(50_000, 'b');
const entry = () => makeEntry({ body: BODY, encoded: { gzip: Buffer.alloc(3000, 'g') }, etag: '"f"' });

test('a file of the earlier format (SCD1) is a miss, not an error, and is removed', async () => {
  const s = await store();
  await s.set('k', entry());
  const path = s.pathOf('k');
  const bytes = await readFile(path);
  bytes.write('SCD1', 0, 'latin1');
  await writeFile(path, bytes);
  assert.equal(await s.open('k'), undefined);
  assert.equal(await gone(path), true);
  await s.close();
});

test('damaged metadata of a large file: open answers a miss before anything is sent', async () => {
  const s = await store();
  await s.set('k', entry());
  const path = s.pathOf('k');
  const bytes = await readFile(path);
  // The metadata JSON follows the header (16 + 3 digests), the key and the 8-byte entry prefix.
  const at = 16 + 3 * 32 + 1 + 8 + 5;
  bytes[at] = bytes[at]! ^ 0x20;
  await writeFile(path, bytes);
  assert.equal(await s.open('k'), undefined);
  assert.equal(await gone(path), true);
  await s.close();
});

test('a truncated large file is a miss for open and get', async () => {
  const s = await store();
  await s.set('k', entry());
  await truncate(s.pathOf('k'), 20_000);
  assert.equal(await s.open('k'), undefined);
  await s.set('k2', entry());
  await truncate(s.pathOf('k2'), 20_000);
  assert.equal(await s.get('k2'), undefined);
  await s.close();
});

test('each body has its own digest: a damaged compressed body fails its own stream, the identity body still streams', async () => {
  const s = await store();
  await s.set('k', entry());
  const path = s.pathOf('k');
  const bytes = await readFile(path);
  // The gzip body is the last 3000 bytes of the file.
  bytes[bytes.length - 10] = 0;
  await writeFile(path, bytes);
  const opened = await s.open('k');
  assert.ok(opened?.source);
  assert.ok((await drain(opened.source.stream())).equals(BODY));
  const again = await s.open('k');
  await assert.rejects(drain(again!.source!.as('gzip').stream()), /does not match its digest/);
  // Read whole, every body is checked: the damaged file is a miss there and is removed.
  assert.equal(await s.get('k'), undefined);
  assert.equal(await gone(path), true);
  await s.close();
});

test('below streamThreshold open reads the entry whole; an entry with a source is never stored', async () => {
  const s = await store(1 << 20);
  await s.set('k', entry());
  const whole = await s.open('k');
  assert.equal(whole?.source, undefined);
  assert.ok(whole?.body.equals(BODY));
  assert.deepEqual(s.stats(), { entries: 1, bytes: s.size().bytes, readsWhole: 1, readsStreamed: 0 });
  const streamed = await (await store(0)).open('missing');
  assert.equal(streamed, undefined);
  const big = await store(0);
  await big.set('k', entry());
  const lazy = await big.open('k');
  await assert.rejects(Promise.resolve().then(() => big.set('k', lazy!)), /never encoded/);
  lazy!.source!.release();
  await s.close();
  await big.close();
});
