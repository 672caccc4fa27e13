import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cacheStatusValue, forwardOfPass, ttlOf } from '../../src/observe/cache-status.js';

test('Cache-Status members follow RFC 9211 parameter syntax', () => {
  assert.equal(cacheStatusValue('stratacache', { hit: true, ttl: 42, detail: 'memory' }), 'stratacache; hit; ttl=42; detail=memory');
  assert.equal(cacheStatusValue('c', { fwd: 'uri-miss', fwdStatus: 200, ttl: 60, stored: true }), 'c; fwd=uri-miss; fwd-status=200; ttl=60; stored');
  assert.equal(cacheStatusValue('c', { fwd: 'uri-miss', collapsed: true, ttl: 3, detail: 'memory' }), 'c; fwd=uri-miss; ttl=3; collapsed; detail=memory');
  assert.equal(cacheStatusValue('c', { fwd: 'bypass', detail: 'hit-for-pass' }), 'c; fwd=bypass; detail=hit-for-pass');
  // A detail that is not a token is a quoted string.
  assert.equal(cacheStatusValue('c', { fwd: 'bypass', detail: 'not storable: "x"' }), 'c; fwd=bypass; detail="not storable: \\"x\\""');
  // RFC 8941 tokens may contain ':' and '/': a peer URL needs no quotes.
  assert.equal(cacheStatusValue('c', { fwd: 'peer', detail: 'http://10.0.0.2:3000' }), 'c; fwd=peer; detail=http://10.0.0.2:3000');
});

test('ttl counts whole seconds left, negative when stale; pass reasons map to fwd values', () => {
  assert.equal(ttlOf({ staleAt: 10_500 }, 0), 10);
  assert.equal(ttlOf({ staleAt: 0 }, 2_500), -3);
  assert.equal(forwardOfPass('method POST'), 'method');
  assert.equal(forwardOfPass('bypass'), 'bypass');
  assert.equal(forwardOfPass('hit-for-pass'), 'bypass');
});
