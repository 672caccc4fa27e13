import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Entry } from '../../src/entry.js';
import { FORWARDED_BUDGET, acceptPeerEntry, forwardedHeaders, type PeerEntryContext } from '../../src/peers/judge.js';
import { testEntry } from '../helpers/entry.js';

const now = 1_700_000_000_000;

function entry(over: Partial<Entry> = {}): Entry {
  return testEntry({ storedAt: now - 1000, shared: false, url: '/a', host: 'example.com', ...over }, now);
}

function ctx(over: Partial<PeerEntryContext> = {}): PeerEntryContext {
  return {
    primary: 'example.com/a',
    sent: {},
    view: {},
    authorized: false,
    cacheStatuses: new Set([200, 404]),
    maxEntrySize: 1024,
    isInvalidated: () => false,
    now,
    ...over,
  };
}

test('forwardedHeaders: a known Vary sends exactly its names, cookie included', () => {
  const view = { 'accept-language': 'fr', cookie: 'a=1', 'user-agent': 'x', authorization: 'Bearer t' };
  assert.deepEqual(forwardedHeaders(view, ['accept-language', 'cookie']), { 'accept-language': 'fr', cookie: 'a=1' });
});

test('forwardedHeaders: without a known Vary, everything but credentials, host, hop-by-hop and validators', () => {
  const view = {
    host: 'example.com',
    'accept-encoding': 'gzip',
    'accept-language': 'fr',
    cookie: 'a=1',
    authorization: 'Bearer t',
    connection: 'keep-alive',
    'if-none-match': '"x"',
    range: 'bytes=0-1',
    'x-stratacache-signature': 'sig',
    'x-device': 'mobile',
  };
  assert.deepEqual(forwardedHeaders(view, undefined), { 'accept-encoding': 'gzip', 'accept-language': 'fr', 'x-device': 'mobile' });
});

test('forwardedHeaders: stays within the budget', () => {
  const view: Record<string, string> = {};
  for (let i = 0; i < 100; i++) view[`x-h${i}`] = 'v'.repeat(100);
  const sent = forwardedHeaders(view, undefined);
  const size = Object.entries(sent).reduce((a, [k, v]) => a + k.length + v.length, 0);
  assert.ok(size <= FORWARDED_BUDGET && Object.keys(sent).length > 0);
});

test('acceptPeerEntry: a fresh entry for the same variant is accepted', () => {
  assert.equal(acceptPeerEntry(entry(), ctx()), true);
  const varied = entry({ vary: ['accept-language'] });
  assert.equal(acceptPeerEntry(varied, ctx({ sent: { 'accept-language': 'fr' }, view: { 'accept-language': 'fr' } })), true);
});

test('acceptPeerEntry: refuses stale, expired, other-status, oversized, private-for-Authorization, other-variant and invalidated entries', () => {
  assert.equal(acceptPeerEntry(entry({ staleAt: now }), ctx()), false);
  assert.equal(acceptPeerEntry(entry({ expiresAt: now }), ctx()), false);
  assert.equal(acceptPeerEntry(entry({ status: 500 }), ctx()), false);
  assert.equal(acceptPeerEntry(entry({ body: Buffer.alloc(2048) }), ctx()), false);
  assert.equal(acceptPeerEntry(entry({ shared: false }), ctx({ authorized: true })), false);
  assert.equal(acceptPeerEntry(entry({ shared: true }), ctx({ authorized: true })), true);
  // The peer chose the cookie-less variant because Cookie was not sent; this request has one.
  assert.equal(acceptPeerEntry(entry({ vary: ['cookie'] }), ctx({ sent: {}, view: { cookie: 'user=2' } })), false);
  assert.equal(acceptPeerEntry(entry({ vary: ['accept-language'] }), ctx({ sent: { 'accept-language': 'fr' }, view: { 'accept-language': 'en' } })), false);
  let asked: Entry | undefined;
  const judged = entry();
  const invalidated = ctx({ isInvalidated: (e) => ((asked = e), true) });
  assert.equal(acceptPeerEntry(judged, invalidated), false);
  assert.equal(asked, judged);
});
