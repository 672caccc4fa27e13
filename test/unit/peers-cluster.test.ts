/**
 * PeerCluster without sockets: membership from a function (refresh, failures keep the previous
 * list, self skipped), the owner strategy never asking anyone for keys this node owns.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PeerCluster } from '../../src/peers/cluster.js';
import { resolveOptions } from '../../src/options/resolve.js';
import type { PeerError } from '../../src/errors.js';

const secret = 'unit-secret-0123456789';
const self = 'http://10.0.0.1:3000';

test('a membership function is re-read; a failure or a bad URL keeps the previous members', async () => {
  let answer: () => unknown = () => [self, 'http://10.0.0.2:3000/', 'http://10.0.0.3:3000'];
  const errors: PeerError[] = [];
  const options = resolveOptions({ peers: { self, nodes: () => answer() as string[], secret, refreshInterval: 60_000 } }).peers;
  const cluster = new PeerCluster(options, { onMembershipError: (e) => errors.push(e) });
  try {
    await cluster.refresh();
    assert.deepEqual(cluster.peers, ['http://10.0.0.2:3000', 'http://10.0.0.3:3000']); // self skipped, slash dropped
    answer = () => {
      throw new Error('service discovery down');
    };
    await cluster.refresh();
    answer = () => ['not a url'];
    await cluster.refresh();
    answer = () => 'http://10.0.0.9:3000';
    await cluster.refresh();
    assert.deepEqual(cluster.peers, ['http://10.0.0.2:3000', 'http://10.0.0.3:3000']);
    assert.equal(errors.length, 3);
    assert.equal(errors[0]!.code, 'ERR_PEER');
    answer = async () => [self, 'http://10.0.0.3:3000'];
    await cluster.refresh();
    assert.deepEqual(cluster.peers, ['http://10.0.0.3:3000']);
    assert.deepEqual(cluster.states(), [{ url: 'http://10.0.0.3:3000', state: 'closed', failures: 0, hits: 0, errors: 0, timeouts: 0 }]);
  } finally {
    cluster.close();
  }
});

test('strategy owner: a key this node owns is not looked up anywhere', async () => {
  const nodes = [self, 'http://10.0.0.2:3000', 'http://10.0.0.3:3000'];
  // This hash makes the node whose URL contains '10.0.0.1' own every key.
  const hash = (input: string): number => (input.startsWith(self) ? 100 : 1);
  const options = resolveOptions({ peers: { self, nodes, secret, strategy: 'owner' } }).peers;
  const cluster = new PeerCluster(options, { hash });
  try {
    assert.equal(cluster.owner('any/key'), self);
    const hit = await cluster.find({ ns: 'r', key: 'any/key', headers: {}, freshAt: undefined }, () => true);
    assert.equal(hit, undefined);
    assert.equal(cluster.counters.peerLoads, 0);
  } finally {
    cluster.close();
  }
});
