/**
 * The Redis tier on a real Redis Cluster with a replica per master (started here, node timeout
 * 1 s): a master killed fails the commands for its slots at once (no response fails, no request
 * waits out a timeout), its replica takes over, and the tier serves those slots from the
 * cluster again by itself.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { Redis } from 'ioredis';
import { redisStore } from '../../src/index.js';
import { request } from '../helpers/http.js';
import { until } from '../helpers/origin.js';
import { NO_REDIS_CLUSTER, startRedisCluster } from '../helpers/redis-cluster.js';
import { countingOrigin, sharedNodes } from '../helpers/shared-nodes.js';

const cluster = await startRedisCluster({ replicas: 1, nodeTimeout: 1000 });
const clients: Redis[] = [];
after(() => {
  for (const c of clients) c.disconnect();
});
const HOST = { host: 'site.test' };

/** A connection to one node, for CLUSTER commands. */
function node(port: number): Redis {
  const c = new Redis(port, '127.0.0.1');
  c.on('error', () => undefined);
  clients.push(c);
  return c;
}

test('a master killed: its pages are rendered meanwhile (every response 200, errors counted), then its replica serves them from the cluster', async (t) => {
  if (!cluster) return t.skip(NO_REDIS_CLUSTER);
  const o = countingOrigin(0);
  const [a, b] = await sharedNodes(2, () => redisStore({ cluster: cluster.urls, prefix: 'fo:' }), o.handler);
  for (const n of [a!, b!]) n.cache.on('error', () => undefined);
  const any = node(cluster.ports[0]!);
  const slotOf = async (path: string): Promise<number> => Number(await any.call('CLUSTER', 'KEYSLOT', a!.store.keys.entry(`site.test${path}`)));
  const slots = (await any.call('CLUSTER', 'SLOTS')) as Array<[number, number, [string, number]]>;
  const owner = (slot: number): number => slots.find(([from, to]) => slot >= from && slot <= to)![2][1];
  // Pages whose entries live on the master about to die.
  const victim = owner(await slotOf('/p/0'));
  const paths: string[] = [];
  for (let i = 0; paths.length < 200; i++) if (owner(await slotOf(`/p/${i}`)) === victim) paths.push(`/p/${i}`);

  await cluster.kill(victim);
  const started = Date.now();
  let served: string | undefined;
  for (const path of paths) {
    const first = await request(`${a!.url}${path}`, { headers: HOST });
    assert.equal(first.status, 200);
    assert.equal(first.body, `<p>${path} render 1</p>`);
    // While the slots have no master the write fails; once the replica took over, it lands.
    if (!(await until(async () => (await b!.store.get(`site.test${path}`).catch(() => undefined)) !== undefined, 300))) continue;
    const second = await request(`${b!.url}${path}`, { headers: HOST });
    assert.equal(second.status, 200);
    assert.equal(second.headers['x-cache'], 'HIT', 'b takes the page from the cluster');
    assert.equal(second.body, `<p>${path} render 1</p>`);
    served = path;
    break;
  }
  assert.ok(served !== undefined, `the replica did not take over the dead master's slots (${Date.now() - started} ms)`);
  assert.equal(o.renders.get(served), 1, 'after the failover one render serves both nodes again');
  assert.ok(a!.store.stats().errors + b!.store.stats().errors > 0, 'the outage was counted');
});
