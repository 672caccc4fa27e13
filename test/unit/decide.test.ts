/** decide(): every action, from plain values (no sockets, no clock). */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { canRescue, decide, isFreshHit, type DecideContext, type RequestFlags } from '../../src/engine/decide.js';
import { testEntry } from '../helpers/entry.js';

const NOW = 1_000_000;
const flags = (over: Partial<RequestFlags> = {}): RequestFlags => ({
  authorized: false,
  refetchPending: false,
  peerRefetch: false,
  canRefresh: true,
  inFlight: false,
  passReason: undefined,
  askPeers: false,
  mayWait: true,
  originFailing: false,
  ...over,
});
const at = (over: Partial<DecideContext> = {}): DecideContext => ({ now: NOW, verdict: undefined, gracePeriod: 10_000, staleOnError: true, ...over });
/** Fresh until NOW + 1 s; stale-while-revalidate until NOW + 2 s; stale-if-error until NOW + 3 s. */
const entry = (over = {}) => testEntry({ staleAt: NOW + 1_000, swrUntil: NOW + 2_000, sieUntil: NOW + 3_000, expiresAt: NOW + 3_000, ...over }, NOW - 1_000);

describe('decide', () => {
  test('hit: a fresh, shareable, not invalidated entry', () => {
    assert.deepEqual(decide(entry(), flags(), at()), { action: 'hit' });
    assert.equal(isFreshHit(entry(), false, NOW, undefined), true);
    // A private entry does not serve a request with Authorization; past staleAt it is no hit.
    assert.equal(isFreshHit(entry({ shared: false }), true, NOW, undefined), false);
    assert.equal(isFreshHit(entry(), false, NOW + 1_000, undefined), false);
  });

  test('revalidate: stale within stale-while-revalidate, nothing refreshing it yet', () => {
    assert.deepEqual(decide(entry(), flags(), at({ now: NOW + 1_500 })), { action: 'revalidate', reason: 'stale-while-revalidate' });
  });

  test('revalidate: invalidated, within the grace period', () => {
    const verdict = { at: NOW - 500 + 1 / 1024, hard: false };
    assert.deepEqual(decide(entry(), flags(), at({ verdict })), { action: 'revalidate', reason: 'grace' });
  });

  test('stale: a refresh is already on its way (refetch, peer refetch, flight)', () => {
    assert.deepEqual(decide(entry(), flags({ inFlight: true }), at({ now: NOW + 1_500 })), { action: 'stale', reason: 'stale-while-revalidate' });
    assert.deepEqual(decide(entry(), flags({ refetchPending: true, canRefresh: false }), at({ now: NOW + 2_500 })), { action: 'stale', reason: 'refetch pending' });
    assert.deepEqual(decide(entry(), flags({ peerRefetch: true }), at({ now: NOW + 2_500 })), { action: 'stale', reason: 'refetch pending on a peer' });
  });

  test('lead: nothing servable, with the old copy as fallback inside stale-if-error', () => {
    const e = entry();
    assert.deepEqual(decide(undefined, flags(), at()), { action: 'lead', fallback: undefined });
    assert.deepEqual(decide(e, flags(), at({ now: NOW + 2_500 })), { action: 'lead', fallback: e });
    // Without a way to refresh in the background, a stale entry is not served (only a fallback).
    assert.deepEqual(decide(e, flags({ canRefresh: false }), at({ now: NOW + 1_500 })), { action: 'lead', fallback: e });
    // Stale-on-error off: no fallback.
    assert.deepEqual(decide(e, flags(), at({ now: NOW + 2_500, staleOnError: false })), { action: 'lead', fallback: undefined });
    // Authorization: leads alone even while a flight is in progress, and never asks peers.
    assert.deepEqual(decide(undefined, flags({ authorized: true, inFlight: true, askPeers: true }), at()), { action: 'lead', fallback: undefined });
  });

  test('peer: a leader in a cluster asks the peers first', () => {
    assert.deepEqual(decide(undefined, flags({ askPeers: true }), at()), { action: 'peer', fallback: undefined });
  });

  test('wait: for the render in flight, or for the peer refetching the page', () => {
    assert.deepEqual(decide(undefined, flags({ inFlight: true }), at()), { action: 'wait', on: 'flight' });
    assert.deepEqual(decide(undefined, flags({ peerRefetch: true }), at()), { action: 'wait', on: 'peer-refetch' });
    // After two looks it stops waiting for the peer copy and leads.
    assert.deepEqual(decide(undefined, flags({ peerRefetch: true, mayWait: false }), at()), { action: 'lead', fallback: undefined });
  });

  test('miss: the key is remembered as not storable (hit-for-miss: rendered alone, stored if storable)', () => {
    assert.deepEqual(decide(undefined, flags({ passReason: 'no-store' }), at()), { action: 'miss', reason: 'no-store', fallback: undefined });
  });

  test('a hard invalidation drops the entry: no hit, no stale, no fallback', () => {
    const verdict = { at: NOW - 500, hard: true };
    assert.deepEqual(decide(entry(), flags(), at({ verdict })), { action: 'lead', fallback: undefined, drop: true });
    assert.equal(canRescue(entry(), { now: NOW, verdict, staleOnError: true }), false);
    assert.equal(canRescue(entry(), { now: NOW, verdict: undefined, staleOnError: true }), true);
  });

  test('an entry the request may not use (private, Authorization) counts as none', () => {
    assert.deepEqual(decide(entry({ shared: false }), flags({ authorized: true }), at()), { action: 'lead', fallback: undefined });
  });
});

describe('decide: revalidation with the stored validators', () => {
  test('a stale entry with an ETag or Last-Modified is revalidated by the leader', () => {
    const tagged = entry({ etag: '"v1"' });
    assert.deepEqual(decide(tagged, flags(), at({ now: NOW + 3_500 })), { action: 'lead', fallback: undefined, revalidate: tagged });
    const dated = entry({ lastModified: 'Mon, 01 Jan 2024 00:00:00 GMT' });
    assert.equal(decide(dated, flags({ askPeers: true }), at({ now: NOW + 3_500 })).revalidate, dated);
  });

  test('not without validators, not for a hard invalidation, not when the entry is served stale', () => {
    assert.equal(decide(entry(), flags(), at({ now: NOW + 3_500 })).revalidate, undefined);
    assert.equal(decide(entry({ etag: '"v1"' }), flags(), at({ verdict: { at: NOW - 500, hard: true } })).revalidate, undefined);
    assert.equal(decide(entry({ etag: '"v1"' }), flags(), at({ now: NOW + 1_500 })).revalidate, undefined);
  });
  test('stale: the origin failed for the key moments ago (errorBackoff), so the old copy answers without a render', () => {
    // Past stale-while-revalidate, inside stale-if-error: normally a lead with the copy as fallback.
    const late = at({ now: NOW + 2_500 });
    assert.equal(decide(entry(), flags(), late).action, 'lead');
    assert.deepEqual(decide(entry(), flags({ originFailing: true }), late), { action: 'stale', reason: 'origin failing', rescue: true });
    // Inside stale-while-revalidate: served stale, and no background refresh is started.
    assert.equal(decide(entry(), flags({ originFailing: true }), at({ now: NOW + 1_500 })).action, 'stale');
    // Past stale-if-error, or with stale-on-error off, nothing may answer for the origin: lead.
    assert.equal(decide(entry(), flags({ originFailing: true }), at({ now: NOW + 3_500 })).action, 'lead');
    assert.equal(decide(entry(), flags({ originFailing: true }), at({ now: NOW + 2_500, staleOnError: false })).action, 'lead');
  });
});
