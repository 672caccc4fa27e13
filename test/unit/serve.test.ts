/**
 * Serving an entry: conditional requests (RFC 9110 §13.1), Age (RFC 9111 §5.1), cache status
 * headers (RFC 9211), HEAD without a body.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { describe, test } from 'node:test';
import type { Entry } from '../../src/entry.js';
import { makeEntry } from '../../src/testing.js';
import { ageOf, notModified, serveEntry, statusHeaders, type CacheStatus } from '../../src/serve.js';

const STORED_AT = 1_700_000_000_000;

function entry(fields: Partial<Entry> = {}): Entry {
  return makeEntry({
    headers: [
      ['content-type', 'text/plain'],
      ['etag', '"v1"'],
      ['last-modified', 'Mon, 01 Jan 2024 00:00:00 GMT'],
      ['cache-control', 'max-age=60'],
      ['x-custom', 'kept'],
      ['link', '</a>'],
      ['link', '</b>'],
    ],
    body: Buffer.from('stored body'),
    storedAt: STORED_AT,
    staleAt: STORED_AT + 60_000,
    swrUntil: STORED_AT + 60_000,
    sieUntil: STORED_AT + 60_000,
    expiresAt: STORED_AT + 60_000,
    etag: '"v1"',
    lastModified: 'Mon, 01 Jan 2024 00:00:00 GMT',
    url: '/x',
    ...fields,
  });
}

const req = (headers: Record<string, string> = {}, method = 'GET'): IncomingMessage => ({ method, headers }) as unknown as IncomingMessage;

/** A response that records what serveEntry writes, as the client would see it. */
function recorder(): { res: ServerResponse; sent: { status?: number; headers: Record<string, string | string[]>; body?: Buffer | undefined; ended: boolean } } {
  const sent: { status?: number; headers: Record<string, string | string[]>; body?: Buffer | undefined; ended: boolean } = { headers: {}, ended: false };
  const res = {
    headersSent: false,
    writeHead(status: number, flat: Array<string | string[]>) {
      sent.status = status;
      for (let i = 0; i < flat.length; i += 2) {
        const value = flat[i + 1]!;
        sent.headers[flat[i] as string] = Array.isArray(value) ? [...value] : value;
      }
      this.headersSent = true;
      return this;
    },
    end(body?: Buffer) {
      sent.body = body;
      sent.ended = true;
      return this;
    },
  };
  return { res: res as unknown as ServerResponse, sent };
}

function serve(e: Entry, r: IncomingMessage, opts: { status?: CacheStatus; now?: number; mode?: 'both' | 'x-cache' | 'cache-status' | false } = {}) {
  const { res, sent } = recorder();
  serveEntry(r, res, e, { status: opts.status ?? 'HIT', now: opts.now ?? STORED_AT + 5_000, statusHeaders: statusHeaders(opts.mode ?? 'both', 'stratacache') });
  return sent;
}

describe('notModified', () => {
  test('If-None-Match: strong and weak tags compare weakly (RFC 9110 §13.1.2)', () => {
    assert.equal(notModified(req({ 'if-none-match': '"v1"' }), entry()), true);
    assert.equal(notModified(req({ 'if-none-match': 'W/"v1"' }), entry()), true);
    assert.equal(notModified(req({ 'if-none-match': '"v1"' }), entry({ etag: 'W/"v1"' })), true);
    assert.equal(notModified(req({ 'if-none-match': '"v0", "v1"' }), entry()), true);
    assert.equal(notModified(req({ 'if-none-match': '"v2"' }), entry()), false);
    assert.equal(notModified(req({ 'if-none-match': '"V1"' }), entry()), false);
  });

  test('If-None-Match: * matches any stored representation with a tag', () => {
    assert.equal(notModified(req({ 'if-none-match': '*' }), entry()), true);
    assert.equal(notModified(req({ 'if-none-match': ' * ' }), entry()), true);
  });

  test('If-None-Match wins over If-Modified-Since (RFC 9110 §13.1.3)', () => {
    const newer = 'Tue, 01 Jan 2030 00:00:00 GMT';
    assert.equal(notModified(req({ 'if-none-match': '"v2"', 'if-modified-since': newer }), entry()), false);
    assert.equal(notModified(req({ 'if-none-match': '"v1"' }), entry({ etag: undefined })), false);
  });

  test('If-Modified-Since: not modified when Last-Modified is at or before the date', () => {
    assert.equal(notModified(req({ 'if-modified-since': 'Mon, 01 Jan 2024 00:00:00 GMT' }), entry()), true);
    assert.equal(notModified(req({ 'if-modified-since': 'Tue, 02 Jan 2024 00:00:00 GMT' }), entry()), true);
    assert.equal(notModified(req({ 'if-modified-since': 'Sun, 31 Dec 2023 23:59:59 GMT' }), entry()), false);
  });

  test('If-Modified-Since: an invalid date, or neither Last-Modified nor Date, never matches', () => {
    assert.equal(notModified(req({ 'if-modified-since': 'yesterday-ish' }), entry()), false);
    assert.equal(notModified(req({ 'if-modified-since': 'Tue, 02 Jan 2024 00:00:00 GMT' }), entry({ lastModified: undefined, headers: [] })), false);
  });

  test("If-Modified-Since without Last-Modified: the stored Date stands in (RFC 9111 §4.3.2)", () => {
    const dated = entry({ lastModified: undefined, headers: [['date', 'Mon, 01 Jan 2024 00:00:00 GMT']] });
    assert.equal(notModified(req({ 'if-modified-since': 'Tue, 02 Jan 2024 00:00:00 GMT' }), dated), true);
    assert.equal(notModified(req({ 'if-modified-since': 'Sun, 31 Dec 2023 00:00:00 GMT' }), dated), false);
  });

  test('no validators: never not-modified', () => {
    assert.equal(notModified(req(), entry()), false);
  });
});

describe('ageOf', () => {
  test('initial age plus whole seconds resident (RFC 9111 §5.1)', () => {
    assert.equal(ageOf(entry(), STORED_AT), 0);
    assert.equal(ageOf(entry(), STORED_AT + 1_999), 1);
    assert.equal(ageOf(entry({ initialAge: 10 }), STORED_AT + 5_000), 15);
    assert.equal(ageOf(entry(), STORED_AT - 5_000), 0);
  });
});

describe('statusHeaders', () => {
  test('both, x-cache only, Cache-Status only, none', () => {
    assert.deepEqual(statusHeaders('both', 'edge').names, ['x-cache', 'cache-status']);
    assert.deepEqual(statusHeaders('both', 'edge').values.HIT, ['HIT', 'edge; hit']);
    assert.deepEqual(statusHeaders('both', 'edge').values.MISS, ['MISS', 'edge; fwd=uri-miss']);
    assert.deepEqual(statusHeaders('x-cache', 'edge').values.PASS, ['PASS']);
    assert.deepEqual(statusHeaders('cache-status', 'edge').values.STALE, ['edge; hit; detail=stale']);
    assert.deepEqual(statusHeaders(false, 'edge').names, []);
  });
});

describe('serveEntry', () => {
  test('200: stored headers, content-length, Age and status headers, then the body', () => {
    const sent = serve(entry(), req());
    assert.equal(sent.status, 200);
    assert.equal(sent.headers['content-type'], 'text/plain');
    assert.equal(sent.headers['x-custom'], 'kept');
    assert.deepEqual(sent.headers.link, ['</a>', '</b>']);
    assert.equal(sent.headers['content-length'], String('stored body'.length));
    assert.equal(sent.headers.age, '5');
    assert.equal(sent.headers['x-cache'], 'HIT');
    assert.equal(sent.headers['cache-status'], 'stratacache; hit');
    assert.equal(sent.body?.toString(), 'stored body');
  });

  test('the reused header template carries the current Age and status each time', () => {
    const e = entry();
    assert.equal(serve(e, req(), { now: STORED_AT + 1_000 }).headers.age, '1');
    const later = serve(e, req(), { now: STORED_AT + 42_000, status: 'STALE' });
    assert.equal(later.headers.age, '42');
    assert.equal(later.headers['x-cache'], 'STALE');
    assert.equal(later.headers['cache-status'], 'stratacache; hit; detail=stale');
  });

  test('statusHeader false sends no status header', () => {
    const sent = serve(entry(), req(), { mode: false });
    assert.equal(sent.headers['x-cache'], undefined);
    assert.equal(sent.headers['cache-status'], undefined);
    assert.equal(sent.headers.age, '5');
  });

  test('HEAD: same headers, no body', () => {
    const sent = serve(entry(), req({}, 'HEAD'));
    assert.equal(sent.status, 200);
    assert.equal(sent.headers['content-length'], String('stored body'.length));
    assert.equal(sent.body, undefined);
    assert.equal(sent.ended, true);
  });

  test('304 for a matching validator: only the headers RFC 9110 §15.4.5 allows, no body', () => {
    const sent = serve(entry(), req({ 'if-none-match': '"v1"' }));
    assert.equal(sent.status, 304);
    assert.equal(sent.body, undefined);
    assert.equal(sent.headers.etag, '"v1"');
    assert.equal(sent.headers['cache-control'], 'max-age=60');
    assert.equal(sent.headers['last-modified'], 'Mon, 01 Jan 2024 00:00:00 GMT');
    assert.equal(sent.headers.age, '5');
    assert.equal(sent.headers['x-cache'], 'HIT');
    assert.equal(sent.headers['content-type'], undefined);
    assert.equal(sent.headers['content-length'], undefined);
    assert.equal(sent.headers['x-custom'], undefined);
  });

  test('304 for If-Modified-Since; 200 when the validator does not match', () => {
    assert.equal(serve(entry(), req({ 'if-modified-since': 'Mon, 01 Jan 2024 00:00:00 GMT' })).status, 304);
    const full = serve(entry(), req({ 'if-none-match': '"other"' }));
    assert.equal(full.status, 200);
    assert.equal(full.body?.toString(), 'stored body');
  });

  test('a stored 404 is served as 404', () => {
    const sent = serve(entry({ status: 404, body: Buffer.from('not here') }), req());
    assert.equal(sent.status, 404);
    assert.equal(sent.body?.toString(), 'not here');
  });
});
