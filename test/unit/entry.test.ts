/**
 * The entry's byte encoding: a binary-safe round trip, and rejection of anything that is not a
 * whole, well-formed entry (bytes from disk or a peer are untrusted).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { entrySize } from '../../src/compact.js';
import { decodeEntry, encodeEntry, type Entry } from '../../src/entry.js';
import { CacheError, EntryDecodeError } from '../../src/errors.js';

function sampleEntry(body: Buffer = Buffer.from('hello, world')): Entry {
  const storedAt = 1_700_000_000_000;
  return {
    status: 200,
    headers: [
      ['content-type', 'text/html; charset=utf-8'],
      ['link', '</a.css>; rel=preload'],
      ['link', '</b.js>; rel=preload'],
      ['x-unicode', 'caf\u00e9 \u2603'],
    ],
    body,
    storedAt,
    initialAge: 3,
    staleAt: storedAt + 60_000,
    swrUntil: storedAt + 90_000,
    sieUntil: storedAt + 600_000,
    expiresAt: storedAt + 600_000,
    etag: '"abc"',
    lastModified: 'Mon, 01 Jan 2024 00:00:00 GMT',
    shared: true,
    url: '/page?a=1&b=2',
    host: 'example.test',
    vary: ['accept-language'],
    tags: ['product-1', 'home'],
  };
}

/** Builds raw bytes with the entry magic, a declared metadata length and the given payload. */
function rawEntry(metaLength: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(0x53434531, 0);
  head.writeUInt32BE(metaLength, 4);
  return Buffer.concat([head, payload]);
}

function rejects(bytes: Uint8Array, message: RegExp): void {
  assert.throws(
    () => decodeEntry(bytes),
    (error: unknown) => {
      assert.ok(error instanceof EntryDecodeError, `expected EntryDecodeError, got ${String(error)}`);
      assert.ok(error instanceof CacheError);
      assert.equal(error.code, 'ERR_ENTRY_DECODE');
      assert.match(error.message, message);
      return true;
    },
  );
}

/** Re-encodes an entry after editing its JSON metadata, keeping the body. */
function withMeta(entry: Entry, edit: (meta: Record<string, unknown>) => void): Buffer {
  const bytes = encodeEntry(entry);
  const metaLength = bytes.readUInt32BE(4);
  const meta = JSON.parse(bytes.toString('utf8', 8, 8 + metaLength)) as Record<string, unknown>;
  edit(meta);
  const json = Buffer.from(JSON.stringify(meta), 'utf8');
  return rawEntry(json.length, Buffer.concat([json, entry.body]));
}

describe('encodeEntry / decodeEntry', () => {
  test('round trip keeps every field', () => {
    const entry = sampleEntry();
    const decoded = decodeEntry(encodeEntry(entry));
    assert.deepEqual({ ...decoded, body: decoded.body.toString('hex') }, { ...entry, body: entry.body.toString('hex') });
  });

  test('binary bodies survive byte for byte (no text or base64 step)', () => {
    const body = Buffer.concat([Buffer.from([0, 0xff, 0xfe, 0x80, 0x0a, 0x0d]), randomBytes(64 * 1024)]);
    const bytes = encodeEntry(sampleEntry(body));
    const decoded = decodeEntry(bytes);
    assert.ok(decoded.body.equals(body));
    // The body is stored raw: the encoding is not much bigger than the body itself.
    assert.ok(bytes.length < body.length + 2048, `encoding is ${bytes.length} bytes for a ${body.length} byte body`);
  });

  test('an empty body and absent validators round trip', () => {
    const entry = { ...sampleEntry(Buffer.alloc(0)), status: 204, etag: undefined, lastModified: undefined, vary: [], tags: [] };
    const decoded = decodeEntry(encodeEntry(entry));
    assert.equal(decoded.body.length, 0);
    assert.equal(decoded.status, 204);
    assert.equal(decoded.etag, undefined);
    assert.equal(decoded.lastModified, undefined);
  });

  test('a plain Uint8Array (not a Buffer) decodes, including at an offset in a larger buffer', () => {
    const bytes = encodeEntry(sampleEntry());
    const larger = new Uint8Array(bytes.length + 10);
    larger.set(bytes, 5);
    const view = new Uint8Array(larger.buffer, 5, bytes.length);
    assert.equal(decodeEntry(view).body.toString(), 'hello, world');
  });

  test('the serving template is not encoded (nor any field outside Entry)', () => {
    const entry = { ...sampleEntry(), head: { cached: true } };
    assert.equal((decodeEntry(encodeEntry(entry)) as Partial<typeof entry>).head, undefined);
  });
});

describe('decodeEntry rejects malformed bytes', () => {
  test('garbage and too-short input', () => {
    rejects(Buffer.alloc(0), /magic/);
    rejects(Buffer.from([0x53, 0x43, 0x45]), /magic/);
    rejects(Buffer.from('GET / HTTP/1.1\r\n\r\n'), /magic/);
    rejects(randomBytes(4096).fill(0, 0, 4), /magic/);
  });

  test('metadata cut short', () => {
    const bytes = encodeEntry(sampleEntry());
    const metaLength = bytes.readUInt32BE(4);
    for (const cut of [8, 9, 8 + Math.floor(metaLength / 2), 8 + metaLength - 1]) rejects(bytes.subarray(0, cut), /metadata length/);
  });

  test('body cut short', () => {
    const bytes = encodeEntry(sampleEntry(randomBytes(1000)));
    rejects(bytes.subarray(0, bytes.length - 1), /body length/);
    rejects(bytes.subarray(0, bytes.length - 500), /body length/);
  });

  test('trailing bytes after the body', () => {
    const bytes = encodeEntry(sampleEntry());
    rejects(Buffer.concat([bytes, Buffer.from('extra')]), /body length/);
  });

  test('an oversized metadata length is refused before parsing', () => {
    const huge = 1024 * 1024;
    rejects(rawEntry(huge, Buffer.alloc(huge + 10, 0x20)), /metadata length/);
    rejects(rawEntry(0xffffffff, Buffer.alloc(16)), /metadata length/);
  });

  test('metadata that is not JSON, or not an object', () => {
    rejects(rawEntry(5, Buffer.from('{not json')), /not JSON/);
    rejects(rawEntry(4, Buffer.from('null')), /not an object/);
    rejects(rawEntry(2, Buffer.from('42')), /not an object|bad status/);
  });

  test('each malformed field is refused', () => {
    const entry = sampleEntry();
    const cases: Array<[string, (m: Record<string, unknown>) => void, RegExp]> = [
      ['status missing', (m) => delete m.status, /status/],
      ['status out of range', (m) => (m.status = 99), /status/],
      ['status not an integer', (m) => (m.status = 200.5), /status/],
      ['headers not pairs', (m) => (m.headers = [['a']]), /headers/],
      ['header value not a string', (m) => (m.headers = [['a', 1]]), /headers/],
      ['staleAt a string', (m) => (m.staleAt = '1'), /staleAt/],
      ['expiresAt missing', (m) => delete m.expiresAt, /expiresAt/],
      ['etag a number', (m) => (m.etag = 5), /validators/],
      ['url missing', (m) => delete m.url, /url/],
      ['shared not boolean', (m) => (m.shared = 'yes'), /flags/],
      ['vary not strings', (m) => (m.vary = [1]), /flags/],
      ['tags missing', (m) => delete m.tags, /flags/],
    ];
    for (const [name, edit, message] of cases) {
      assert.throws(() => decodeEntry(withMeta(entry, edit)), message, name);
    }
    // The unedited re-encoding decodes, so each failure above is the edit's doing.
    assert.equal(decodeEntry(withMeta(entry, () => {})).status, 200);
  });
});

describe('entrySize', () => {
  test('charges body, headers, url and host', () => {
    const small = sampleEntry(Buffer.alloc(10));
    const big = sampleEntry(Buffer.alloc(10_010));
    assert.equal(entrySize(big) - entrySize(small), 10_000);
    assert.ok(entrySize(small) > 10 + small.url.length + small.host.length);
    const moreHeaders = { ...small, headers: [...small.headers, ['x-extra', 'value'] as [string, string]] };
    assert.ok(entrySize(moreHeaders) > entrySize(small));
  });
});
