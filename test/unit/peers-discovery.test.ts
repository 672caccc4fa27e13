/**
 * Membership discovery without HTTP nodes: `peers.discover` options refused at construction with
 * their path and value; DNS answers (A/AAAA with a port, SRV with targets) read from a real DNS
 * server on loopback; a cluster fed by a source reports joins and leaves, keeps its members when
 * the source fails or is skipped, and a join moves only the keys the new node now owns.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { createCache } from '../../src/index.js';
import { resolveOptions } from '../../src/options/resolve.js';
import { PeerCluster } from '../../src/peers/cluster.js';
import { DISCOVERY_DEFAULTS, resolveDiscovery } from '../../src/peers/discovery-options.js';
import { DnsMembers } from '../../src/peers/dns.js';
import type { MembershipChange, MembershipSource } from '../../src/peers/membership.js';
import type { PeerError } from '../../src/errors.js';
import { assertDocumentedDefaults } from '../helpers/defaults.js';
import { startDns } from '../helpers/dns.js';

const secret = 'unit-secret-0123456789';
const self = 'http://10.0.0.1:3000';

/** `createCache` with these peers options throws `kind` whose message names `path` and `got`. */
function refuses(peers: object, kind: typeof TypeError | typeof RangeError, path: string, got: string): void {
  assert.throws(
    () => createCache({ peers: { self, secret, ...peers } as never }),
    (error: Error) => error instanceof kind && error.message.includes(`options.${path}`) && error.message.includes(got),
    `${path} = ${got}`,
  );
}

describe('peers.discover options', () => {
  test('bad values throw at construction naming the option and the value', () => {
    refuses({ discover: 'dns' }, TypeError, 'peers.discover', "'dns'");
    refuses({ discover: {} }, TypeError, 'peers.discover', 'an object');
    refuses({ discover: { dns: 'a.test', redis: true } }, TypeError, 'peers.discover', 'an object');
    refuses({ discover: { dns: 'not a name!' } }, TypeError, 'peers.discover.dns', "'not a name!'");
    refuses({ discover: { dns: 42 } }, TypeError, 'peers.discover.dns', '42');
    refuses({ discover: { dns: 'a.test', port: 0 } }, RangeError, 'peers.discover.port', '0');
    refuses({ discover: { dns: 'a.test', port: 70000 } }, RangeError, 'peers.discover.port', '70000');
    refuses({ discover: { dns: 'a.test', port: 80, interval: 'often' } }, TypeError, 'peers.discover.interval', "'often'");
    refuses({ discover: { dns: 'a.test', port: 80, protocol: 'ftp' } }, TypeError, 'peers.discover.protocol', "'ftp'");
    refuses({ discover: { dns: 'a.test', port: 80, servers: ['dns.google'] } }, TypeError, 'peers.discover.servers[0]', "'dns.google'");
    refuses({ discover: { dns: 'a.test', port: 80, servers: [] } }, TypeError, 'peers.discover.servers', 'an array');
    refuses({ discover: { dns: 'a.test', port: 80, weight: 1 } }, TypeError, 'peers.discover.weight', 'unknown option');
    refuses({ discover: { redis: 'yes' } }, TypeError, 'peers.discover.redis', "'yes'");
    refuses({ discover: { redis: true, interval: 1000, ttl: 1500 } }, RangeError, 'peers.discover.ttl', '1500');
    refuses({ discover: { redis: true, port: 80 } }, TypeError, 'peers.discover.port', 'unknown option');
  });

  test('nodes and discover together are refused: one source of members', () => {
    refuses({ nodes: ['http://10.0.0.2:3000'], discover: { dns: 'a.test', port: 80 } }, TypeError, 'peers.nodes', 'an array');
    refuses({ nodes: () => [], discover: { dns: 'a.test', port: 80 } }, TypeError, 'peers.nodes', 'a function');
    // An empty list is no list.
    assert.equal(resolveOptions({ peers: { self, secret, nodes: [], discover: { dns: 'a.test', port: 80 } } }).peers.discover?.kind, 'dns');
  });

  test('discover needs self and a secret, like nodes', () => {
    assert.throws(() => createCache({ peers: { secret, discover: { dns: 'a.test', port: 80 } } }), /options\.peers\.self .*required with options\.peers\.discover/);
    assert.throws(() => createCache({ peers: { self, discover: { dns: 'a.test', port: 80 } } }), /options\.peers\.secret .*required with options\.peers\.discover/);
  });

  test('{ redis: true } without a Redis store is refused at construction', () => {
    assert.throws(() => createCache({ peers: { self, secret, discover: { redis: true } } }), /options\.stores to hold a redisStore for options\.peers\.discover\.redis/);
  });

  test('defaults apply; servers accept addresses with ports', () => {
    assert.deepEqual(resolveDiscovery({ dns: 'web.shop.svc.cluster.local', port: 3000 }), {
      kind: 'dns',
      dns: 'web.shop.svc.cluster.local',
      port: 3000,
      protocol: 'http',
      interval: 5000,
      servers: undefined,
      timeout: 2000,
    });
    assert.deepEqual(resolveDiscovery({ dns: '_http._tcp.web', servers: ['10.96.0.10', '127.0.0.1:5353', '[::1]:53'] })?.kind, 'dns');
    assert.deepEqual(resolveDiscovery({ redis: true }), { kind: 'redis', interval: 2000, ttl: 6000 });
    assert.equal(resolveDiscovery(undefined), undefined);
  });

  test('every DnsDiscoveryOptions and RedisDiscoveryOptions field documents its default', () => {
    assertDocumentedDefaults('peers/discovery-options.ts', 'DnsDiscoveryOptions', DISCOVERY_DEFAULTS.dns, 'DISCOVERY_DEFAULTS.dns');
    assertDocumentedDefaults('peers/discovery-options.ts', 'RedisDiscoveryOptions', DISCOVERY_DEFAULTS.redis, 'DISCOVERY_DEFAULTS.redis');
  });
});

describe('DNS answers', async () => {
  const dns = await startDns();
  after(() => dns.close());
  const members = (options: object): DnsMembers => {
    const resolved = resolveDiscovery({ servers: [dns.address], timeout: 300, ...options });
    assert.ok(resolved?.kind === 'dns');
    return new DnsMembers(resolved);
  };

  test('with a port: every A and AAAA address is a node', async () => {
    dns.set('web.test', [
      { type: 'A', address: '10.0.0.2' },
      { type: 'A', address: '10.0.0.1' },
      { type: 'AAAA', address: 'fd00::5' },
    ]);
    assert.deepEqual(await members({ dns: 'web.test', port: 3000 }).read(), ['http://10.0.0.1:3000', 'http://10.0.0.2:3000', 'http://[fd00::5]:3000']);
    assert.deepEqual(await members({ dns: 'web.test', port: 443, protocol: 'https' }).read(), ['https://10.0.0.1', 'https://10.0.0.2', 'https://[fd00::5]']);
  });

  test('without a port: SRV records give each node its port, their targets its addresses', async () => {
    dns.set('_http._tcp.web.test', [
      { type: 'SRV', target: 'pod-a.web.test', port: 3001 },
      { type: 'SRV', target: 'pod-b.web.test', port: 3002 },
      { type: 'SRV', target: 'gone.web.test', port: 3003 },
    ]);
    dns.set('pod-a.web.test', [{ type: 'A', address: '10.0.0.7' }]);
    dns.set('pod-b.web.test', [{ type: 'AAAA', address: 'fd00::8' }]);
    assert.deepEqual(await members({ dns: '_http._tcp.web.test' }).read(), ['http://10.0.0.7:3001', 'http://[fd00::8]:3002']);
  });

  test('no such name, or no records: no nodes; a failing server rejects', async () => {
    dns.set('empty.test', []);
    assert.deepEqual(await members({ dns: 'empty.test', port: 80 }).read(), []);
    assert.deepEqual(await members({ dns: 'missing.test', port: 80 }).read(), []);
    dns.mode = 'failing';
    try {
      await assert.rejects(members({ dns: 'web.test', port: 80 }).read(), { code: 'ESERVFAIL' });
    } finally {
      dns.mode = 'answer';
    }
  });
});

/** A source answering what the test says. */
function scripted(): MembershipSource & { answer: () => Promise<readonly string[] | undefined>; closed: number } {
  const source = {
    name: 'scripted',
    interval: 60_000,
    closed: 0,
    answer: async (): Promise<readonly string[] | undefined> => [],
    read: () => source.answer(),
    close: async () => void source.closed++,
  };
  return source;
}

describe('a cluster fed by a discovery source', () => {
  const options = resolveOptions({ peers: { self, secret, discover: { dns: 'unused.test', port: 3000 } } }).peers;
  const n = (i: number): string => `http://10.0.0.${i}:3000`;

  test('joins and leaves are events and counters; a failure or a skipped read keeps the members', async () => {
    const source = scripted();
    const changes: MembershipChange[] = [];
    const errors: PeerError[] = [];
    source.answer = async () => [n(1), n(2), n(3)];
    // The first read starts at construction.
    const cluster = new PeerCluster(options, { source, onMembership: (c) => changes.push(c), onMembershipError: (e) => errors.push(e) });
    await cluster.refresh();
    assert.deepEqual(cluster.peers, [n(2), n(3)]);
    assert.deepEqual(changes, [{ joined: [n(2), n(3)], left: [], nodes: [n(1), n(2), n(3)] }]);
    await cluster.refresh(); // the same list: no event
    assert.equal(changes.length, 1);
    source.answer = async () => [n(1), n(3), n(4)];
    await cluster.refresh();
    assert.deepEqual(changes[1], { joined: [n(4)], left: [n(2)], nodes: [n(1), n(3), n(4)] });
    source.answer = async () => {
      throw new Error('dns down');
    };
    await cluster.refresh();
    assert.equal(errors.length, 1);
    assert.match(errors[0]!.message, /^scripted failed; keeping the previous members/);
    source.answer = async () => undefined; // the store is skipped: kept, nothing reported
    await cluster.refresh();
    assert.equal(errors.length, 1);
    assert.deepEqual(cluster.peers, [n(3), n(4)]);
    assert.deepEqual(cluster.membership(), { members: 3, peerJoins: 3, peerLeaves: 1 });
    await cluster.close();
    assert.equal(source.closed, 1);
  });

  test('a fourth node joining takes only the keys it now owns', async () => {
    const source = scripted();
    source.answer = async () => [n(1), n(2), n(3)];
    const cluster = new PeerCluster({ ...options, strategy: 'owner' }, { source });
    try {
      await cluster.refresh();
      const keys = Array.from({ length: 3000 }, (_, i) => `www.example.com/p/${i}`);
      const before = keys.map((k) => cluster.owner(k));
      source.answer = async () => [n(1), n(2), n(3), n(4)];
      await cluster.refresh();
      let moved = 0;
      keys.forEach((k, i) => {
        const now = cluster.owner(k);
        if (now === before[i]) return;
        moved++;
        assert.equal(now, n(4), `${k} moved from ${before[i]} to ${now}`);
      });
      // About a quarter of the keys, each from the node that owned it.
      assert.ok(moved > 600 && moved < 900, `${moved} of 3000 keys moved`);
      source.answer = async () => [n(1), n(2), n(3)];
      await cluster.refresh();
      assert.deepEqual(
        keys.map((k) => cluster.owner(k)),
        before,
        'the fourth node leaving gives its keys back to their previous owners',
      );
    } finally {
      await cluster.close();
    }
  });
});
