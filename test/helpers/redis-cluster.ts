/**
 * A real Redis Cluster for tests (three masters, and replicas when asked): `redis-server --cluster-enabled yes` on free
 * loopback ports (each port P with P + 10000, its cluster bus port, free too), joined by
 * `redis-cli --cluster create`, ready once every node says `cluster_state:ok`. No persistence;
 * the nodes' files live in a temporary directory. Every process is killed and the directory
 * removed after the test file. Without `redis-server` or `redis-cli`, {@link startRedisCluster}
 * returns undefined and the test must `t.skip()` with {@link NO_REDIS_CLUSTER} (under CI it throws:
 * see requires.ts).
 */
import { execFile, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after } from 'node:test';
import { launchRedis, stopRedis } from './redis.js';
import { missing } from './requires.js';

/** The reason a Redis Cluster test is skipped on a machine without the server or redis-cli. */
export const NO_REDIS_CLUSTER = 'redis-server or redis-cli not installed: apt-get install redis-server redis-tools (.ci/run does it) to run the Redis Cluster tests';

const have = (bin: string): boolean => spawnSync(bin, ['--version'], { stdio: 'ignore' }).status === 0;
const HAVE_CLUSTER = have('redis-server') && have('redis-cli');
const run = promisify(execFile);

/** A running cluster. */
export interface RedisClusterServer {
  /** Every node's port (masters first), and their `redis://127.0.0.1:<port>` URLs. */
  ports: number[];
  urls: string[];
  /** Kills the node on `port` (SIGKILL: no goodbye; a master's replica, if any, takes over after the node timeout). */
  kill(port: number): Promise<void>;
}

/** Options of {@link startRedisCluster}. */
export interface RedisClusterOptions {
  /** Masters. @default 3 */
  masters?: number;
  /** Replicas of each master. @default 0 */
  replicas?: number;
  /** `cluster-node-timeout` in ms: how long a silent node takes to be failed (and replaced by its replica). @default 15000 */
  nodeTimeout?: number;
}

// The servers are killed after the file by the helper that starts them (./redis.ts); their files go here.
const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function bind(port: number): Promise<import('node:net').Server | undefined> {
  const server = createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(undefined));
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}
const close = (server: import('node:net').Server): Promise<void> => new Promise((r) => server.close(() => r()));

/** A free port P whose bus port P + 10000 is free too (both bound once, then released). */
async function freeClusterPort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const server = (await bind(0))!;
    const { port } = server.address() as { port: number };
    const bus = port + 10_000 <= 65_535 ? await bind(port + 10_000) : undefined;
    await close(server);
    if (bus !== undefined) {
      await close(bus);
      return port;
    }
  }
  throw new Error('no free port with a free cluster bus port (port + 10000) found');
}

const launch = (port: number, dir: string, nodeTimeout: number): Promise<ChildProcess> =>
  launchRedis(port, ['--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${port}.conf`), '--dir', dir, '--cluster-require-full-coverage', 'no', '--cluster-node-timeout', String(nodeTimeout)]);

/**
 * Waits until every node reports `cluster_state:ok` (the slots are assigned and the nodes agree),
 * and every replica's link to its master is up (it holds the data, so it may take over).
 */
async function untilOk(ports: number[]): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const states = await Promise.all(ports.map(async (port) => (await run('redis-cli', ['-p', String(port), 'cluster', 'info'])).stdout + (await run('redis-cli', ['-p', String(port), 'info', 'replication'])).stdout));
    if (states.every((s) => /cluster_state:ok/.test(s) && (!/role:slave/.test(s) || /master_link_status:up/.test(s)))) return;
    if (Date.now() > deadline) throw new Error(`the cluster did not become ok: ${states.join(' / ')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Starts a cluster (three masters, no replicas unless asked), stopped after the test file; undefined without the binaries. */
export async function startRedisCluster({ masters = 3, replicas = 0, nodeTimeout = 15_000 }: RedisClusterOptions = {}): Promise<RedisClusterServer | undefined> {
  if (!HAVE_CLUSTER) return missing(NO_REDIS_CLUSTER);
  const dir = mkdtempSync(join(tmpdir(), 'stratacache-cluster-'));
  dirs.push(dir);
  const ports: number[] = [];
  const children = new Map<number, ChildProcess>();
  for (let i = 0; i < masters * (1 + replicas); i++) {
    const port = await freeClusterPort();
    ports.push(port);
    children.set(port, await launch(port, dir, nodeTimeout));
  }
  await run('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', String(replicas), '--cluster-yes'], { timeout: 60_000 });
  await untilOk(ports);
  return {
    ports,
    urls: ports.map((p) => `redis://127.0.0.1:${p}`),
    kill: async (port) => {
      const child = children.get(port);
      if (child !== undefined) await stopRedis(child);
    },
  };
}
