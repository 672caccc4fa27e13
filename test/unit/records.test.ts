/**
 * KeyRecords: one record per key. Flights by variant key, joinable only while no invalidation
 * covers them; a late settle never frees a newer flight; hit-for-miss and the failing backoff
 * expire with the clock; records with nothing live in them go away; the map stays bounded.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KeyRecords } from '../../src/engine/records.js';

function records(over: Partial<ConstructorParameters<typeof KeyRecords>[0]> = {}): { r: KeyRecords; clock: { now: number }; covered: Set<string> } {
  const clock = { now: 1_000 };
  const covered = new Set<string>();
  const r = new KeyRecords({ passTtl: 100, errorBackoff: 50, now: () => clock.now, renderTime: () => clock.now, covers: (url) => covered.has(url), ...over });
  return { r, clock, covered };
}

test('a flight is joinable until an invalidation covers it; a new flight replaces it for later requests', async () => {
  const { r, covered } = records();
  const first = r.start('p', 'k');
  assert.equal(first.startedAt, 1_000);
  assert.equal(r.joinable('p', 'k', '/a'), first);
  covered.add('/a');
  assert.equal(r.joinable('p', 'k', '/a'), undefined, 'covered: nobody joins it');
  const second = r.start('p', 'k');
  // The old flight settles late: its own waiters get it, the newer flight stays.
  r.settle('p', 'k', first, { outcome: 'invalidated' });
  assert.equal(r.flight('p', 'k'), second);
  assert.equal((await first.promise).outcome, 'invalidated');
  r.settle('p', 'k', second, { outcome: 'stored' });
  r.settle('p', 'k', second, { outcome: 'failed' });
  assert.equal((await second.promise).outcome, 'stored', 'a second settle does nothing');
  assert.equal(r.flight('p', 'k'), undefined);
  assert.equal(r.inFlight, 0);
  assert.equal(r.size, 0, 'a record with nothing live is removed');
});

test('hit-for-miss and the failing backoff expire; a storable response ends both', () => {
  const { r, clock } = records();
  r.rememberPass('p', 'no-store');
  r.rememberFailing('p');
  assert.equal(r.passReason('p'), 'no-store');
  assert.equal(r.failing('p'), true);
  clock.now += 60;
  assert.equal(r.failing('p'), false);
  assert.equal(r.passReason('p'), 'no-store');
  clock.now += 50;
  assert.equal(r.passReason('p'), undefined);
  assert.equal(r.size, 0);
  r.rememberPass('q', 'vary *');
  r.stored('q');
  assert.equal(r.passReason('q'), undefined);
});

test('passTtl 0 and errorBackoff 0 remember nothing', () => {
  const { r } = records({ passTtl: 0, errorBackoff: 0 });
  r.rememberPass('p', 'no-store');
  r.rememberFailing('p');
  assert.equal(r.passReason('p'), undefined);
  assert.equal(r.failing('p'), false);
});

test('one background refresh per variant key', () => {
  const { r } = records();
  assert.equal(r.beginRefresh('p', 'k'), true);
  assert.equal(r.beginRefresh('p', 'k'), false);
  assert.equal(r.beginRefresh('p', 'k2'), true);
  r.endRefresh('p', 'k');
  assert.equal(r.beginRefresh('p', 'k'), true);
});

test('the map is bounded, and a record holding a flight is never evicted', () => {
  const { r } = records({ max: 3 });
  const live = r.start('live', 'live');
  for (let i = 0; i < 10; i++) r.rememberPass(`p${i}`, 'no-store');
  assert.ok(r.size <= 3, `size ${r.size}`);
  assert.equal(r.flight('live', 'live'), live);
});
