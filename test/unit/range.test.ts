/** rangeOf and ifRangeMatches: which bytes a Range request gets from a stored body (RFC 9110 §14). */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ifRangeMatches, rangeOf } from '../../src/range.js';

describe('rangeOf', () => {
  test('single ranges: first-last, open-ended, suffix, clipped to the body', () => {
    assert.deepEqual(rangeOf('bytes=0-1', 10), { kind: 'partial', start: 0, end: 1 });
    assert.deepEqual(rangeOf('bytes=5-', 10), { kind: 'partial', start: 5, end: 9 });
    assert.deepEqual(rangeOf('bytes=-3', 10), { kind: 'partial', start: 7, end: 9 });
    assert.deepEqual(rangeOf('bytes=-30', 10), { kind: 'partial', start: 0, end: 9 });
    assert.deepEqual(rangeOf('bytes=8-100', 10), { kind: 'partial', start: 8, end: 9 });
    assert.deepEqual(rangeOf('BYTES = 2-3', 10), { kind: 'partial', start: 2, end: 3 });
  });

  test('a range past the end is unsatisfiable (416)', () => {
    assert.deepEqual(rangeOf('bytes=10-', 10), { kind: 'unsatisfiable' });
    assert.deepEqual(rangeOf('bytes=-0', 10), { kind: 'unsatisfiable' });
  });

  test('what is not one valid bytes range gets the full body', () => {
    for (const r of ['bytes=0-1,3-4', 'items=0-1', 'bytes=5-2', 'bytes=-', 'bytes=a-b', '']) assert.deepEqual(rangeOf(r, 10), { kind: 'full' }, r);
  });
});

describe('ifRangeMatches', () => {
  const stored = { etag: '"v1"', lastModified: 'Mon, 01 Jan 2024 00:00:00 GMT' };
  test('strong entity-tag comparison; weak tags never match', () => {
    assert.equal(ifRangeMatches('"v1"', stored), true);
    assert.equal(ifRangeMatches('"v2"', stored), false);
    assert.equal(ifRangeMatches('W/"v1"', stored), false);
    assert.equal(ifRangeMatches('"v1"', { etag: 'W/"v1"' }), false);
  });
  test('a date must equal Last-Modified exactly', () => {
    assert.equal(ifRangeMatches('Mon, 01 Jan 2024 00:00:00 GMT', stored), true);
    assert.equal(ifRangeMatches('Mon, 01 Jan 2024 00:00:01 GMT', stored), false);
    assert.equal(ifRangeMatches('Mon, 01 Jan 2024 00:00:00 GMT', { etag: '"v1"' }), false);
  });
});
