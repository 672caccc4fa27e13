/**
 * The data cache's judgement of a peer's entry (judgePeerData) and its record of local deletions
 * (DataDeletions): plain values, no sockets.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Entry } from '../../src/entry.js';
import { makeEntry } from '../../src/testing.js';
import { DataDeletions, judgePeerData, type PeerDataContext } from '../../src/data/peers.js';

const NOW = 1_700_000_000_000;

function entry(over: Partial<Entry> = {}): Entry {
  return makeEntry({
    headers: [['content-type', 'application/json']],
    body: Buffer.from('{"a":1}'),
    storedAt: NOW - 1_000,
    staleAt: NOW + 1_000,
    swrUntil: NOW + 5_000,
    sieUntil: NOW + 9_000,
    expiresAt: NOW + 9_000,
    shared: true,
    url: 'user:1',
    host: '',
    ...over,
  });
}

const ctx = (over: Partial<PeerDataContext> = {}): PeerDataContext => ({
  key: 'v:user:1',
  url: 'user:1',
  now: NOW,
  maxEntrySize: 1024,
  cacheStatuses: new Set([200, 301, 404]),
  value: true,
  deletedAt: 0,
  isInvalidated: () => false,
  decodes: () => true,
  ...over,
});

test('a fresh value for the key asked is used fresh; inside its swr window, stale', () => {
  assert.equal(judgePeerData(entry(), ctx()), 'fresh');
  assert.equal(judgePeerData(entry(), ctx({ now: NOW + 1_000 })), 'stale');
  assert.equal(judgePeerData(entry(), ctx({ now: NOW + 5_000 })), undefined, 'only stale-if-error left: refused');
  assert.equal(judgePeerData(entry({ expiresAt: NOW }), ctx()), undefined, 'expired');
});

test('refused: another key, too big, bad status, undecodable, invalidated tags', () => {
  assert.equal(judgePeerData(entry({ url: 'user:2' }), ctx()), undefined);
  assert.equal(judgePeerData(entry({ body: Buffer.alloc(2048) }), ctx()), undefined);
  assert.equal(judgePeerData(entry({ status: 404 }), ctx()), undefined, 'a value is always a 200');
  assert.equal(judgePeerData(entry({ status: 404 }), ctx({ value: false })), 'fresh', 'a fetched 404 is stored like any cacheable status');
  assert.equal(judgePeerData(entry({ status: 500 }), ctx({ value: false })), undefined);
  assert.equal(judgePeerData(entry(), ctx({ decodes: () => false })), undefined);
  assert.equal(judgePeerData(entry(), ctx({ value: false, decodes: () => false })), 'fresh', 'responses are bytes, not decoded');
  assert.equal(judgePeerData(entry({ tags: ['t'] }), ctx({ isInvalidated: () => true })), undefined);
  assert.equal(judgePeerData(entry(), ctx({ isInvalidated: () => true })), 'fresh', 'untagged values are not judged by epochs, as locally');
});

test('a copy stored at or before a local deletion is refused; a later one is used', () => {
  assert.equal(judgePeerData(entry({ storedAt: NOW - 10 }), ctx({ deletedAt: NOW - 10 })), undefined);
  assert.equal(judgePeerData(entry({ storedAt: NOW - 9 }), ctx({ deletedAt: NOW - 10 })), 'fresh');
});

test('DataDeletions: newest over the names, never moving back; evicted names fold into a floor', () => {
  const d = new DataDeletions(2);
  assert.equal(d.newest(['a']), 0);
  d.record('a', 10);
  d.record('a', 5);
  assert.equal(d.newest(['a']), 10);
  d.record('b', 20);
  assert.equal(d.newest(['a', 'b']), 20);
  d.record('c', 30); // evicts 'a' (10) into the floor
  assert.equal(d.newest(['zzz']), 10);
  assert.equal(d.newest(['c']), 30);
});
