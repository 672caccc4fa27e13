import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rendezvous, defaultHash } from '../../src/peers/ring.js';

const nodes = ['http://10.0.0.1:3000', 'http://10.0.0.2:3000', 'http://10.0.0.3:3000', 'http://10.0.0.4:3000'];
const keys = Array.from({ length: 2000 }, (_, i) => `www.example.com/page/${i}`);

test('the owner of a key is stable and does not depend on the order of the node list', () => {
  const ring = new Rendezvous(nodes);
  const shuffled = new Rendezvous([...nodes].reverse());
  for (const key of keys) {
    assert.equal(ring.owner(key), ring.owner(key));
    assert.equal(shuffled.owner(key), ring.owner(key));
  }
});

test('keys spread over every node', () => {
  const ring = new Rendezvous(nodes);
  const counts = new Map<string, number>();
  for (const key of keys) counts.set(ring.owner(key)!, (counts.get(ring.owner(key)!) ?? 0) + 1);
  assert.equal(counts.size, 4);
  for (const n of counts.values()) assert.ok(n > 350 && n < 650, `share ${n} of 2000`);
});

test('removing a node moves only the keys it owned', () => {
  const before = new Rendezvous(nodes);
  const after = new Rendezvous(nodes.filter((n) => n !== nodes[2]));
  let moved = 0;
  for (const key of keys) {
    const was = before.owner(key)!;
    const now = after.owner(key)!;
    if (was === nodes[2]) {
      moved++;
      assert.notEqual(now, nodes[2]);
    } else assert.equal(now, was, `key ${key} moved from a surviving node`);
  }
  assert.ok(moved > 0);
});

test('adding a node takes keys only for itself', () => {
  const before = new Rendezvous(nodes);
  const after = new Rendezvous([...nodes, 'http://10.0.0.5:3000']);
  for (const key of keys) {
    const now = after.owner(key)!;
    if (now !== 'http://10.0.0.5:3000') assert.equal(now, before.owner(key));
  }
});

test('the hash is injectable; ties go to the smaller node', () => {
  const constant = new Rendezvous(['http://b', 'http://a', 'http://c'], () => 7);
  assert.equal(constant.owner('anything'), 'http://a');
  const byLength = new Rendezvous(['http://x', 'http://longer'], (input) => input.length);
  assert.equal(byLength.owner('k'), 'http://longer');
  assert.equal(new Rendezvous([]).owner('k'), undefined);
  assert.ok(Number.isSafeInteger(defaultHash('x')) && defaultHash('x') >= 0);
});
