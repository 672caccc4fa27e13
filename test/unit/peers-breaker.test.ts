import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CircuitBreaker } from '../../src/peers/breaker.js';

function fakeClock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

test('opens after failureThreshold consecutive failures, and a success in between resets the count', () => {
  const clock = fakeClock();
  const b = new CircuitBreaker({ failureThreshold: 3, coolDown: 1000, now: clock.now });
  assert.equal(b.state, 'closed');
  b.failure();
  b.failure();
  b.success();
  assert.equal(b.failures, 0);
  b.failure();
  b.failure();
  assert.equal(b.allow(), 'pass');
  b.failure();
  assert.equal(b.state, 'open');
  assert.equal(b.allow(), false);
});

test('half-open after coolDown lets exactly one probe through; its success closes the breaker', () => {
  const clock = fakeClock();
  const b = new CircuitBreaker({ failureThreshold: 1, coolDown: 1000, now: clock.now });
  b.failure();
  clock.advance(999);
  assert.equal(b.allow(), false);
  clock.advance(1);
  assert.equal(b.state, 'half-open');
  assert.equal(b.allow(), 'probe');
  assert.equal(b.allow(), false); // only one probe at a time
  b.success();
  assert.equal(b.state, 'closed');
  assert.equal(b.allow(), 'pass');
});

test('a failed probe re-opens the breaker for another coolDown', () => {
  const clock = fakeClock();
  const b = new CircuitBreaker({ failureThreshold: 2, coolDown: 500, now: clock.now });
  b.failure();
  b.failure();
  clock.advance(500);
  assert.equal(b.allow(), 'probe');
  b.failure();
  assert.equal(b.state, 'open');
  clock.advance(499);
  assert.equal(b.allow(), false);
  clock.advance(1);
  assert.equal(b.allow(), 'probe');
});

test('a probe cancelled without a verdict frees the slot for the next probe; a plain grant does not', () => {
  const clock = fakeClock();
  const b = new CircuitBreaker({ failureThreshold: 1, coolDown: 100, now: clock.now });
  const early = b.allow(); // granted while closed, still in flight
  b.failure();
  clock.advance(100);
  const probe = b.allow();
  assert.equal(probe, 'probe');
  b.release(early);
  assert.equal(b.allow(), false); // the probe is still out
  b.release(probe);
  assert.equal(b.allow(), 'probe');
});
