/**
 * A real three-master Redis Cluster for tests: `redis-server --cluster-enabled yes` on free
 * loopback ports (each port P with P + 10000, its cluster bus port, free too), joined by
 * `redis-cli --cluster create`, ready once every node says `cluster_state:ok`. No persistence;
 * the nodes' files live in a temporary directory. Every process is killed and the directory
 * removed after the test file. Without `redis-server` or `redis-cli`, {@link startRedisCluster}
 * returns undefined and the test must `t.skip()` with {@link NO_REDIS_CLUSTER}.
 */
import { execFile, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after } from 'node:test';
import { launchRedis, stopRedis } from './redis.js';

/** The reason a Redis Cluster test is skipped on a machine without the server or redis-cli. */
export const NO_REDIS_CLUSTER = 'redis-server or redis-cli not installed: apt-get install redis-server redis-tools (.ci/run does it) to run the Redis Cluster tests';

const have = (bin: string): boolean => spawnSync(bin, ['--version'], { stdio: 'ignore' }).status === 0;
const HAVE_CLUSTER = have('redis-server') && have('redis-cli');
const run = promisify(execFile);

/** A running cluster. */
export interface RedisClusterServer {
  /** The masters' ports, and their `redis://127.0.0.1:<port>` URLs. */
  ports: number[];
  urls: string[];
  /** Kills the master on `port` (SIGKILL: no goodbye, no failover: the cluster has no replicas). */
  kill(port: number): Promise<void>;
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

const launch = (port: number, dir: string): Promise<ChildProcess> =>
  launchRedis(port, ['--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${port}.conf`), '--dir', dir, '--cluster-require-full-coverage', 'no']);

/** Waits until every node reports `cluster_state:ok` (the slots are assigned and the nodes agree). */
async function untilOk(ports: number[]): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const states = await Promise.all(ports.map(async (port) => (await run('redis-cli', ['-p', String(port), 'cluster', 'info'])).stdout));
    if (states.every((s) => /cluster_state:ok/.test(s))) return;
    if (Date.now() > deadline) throw new Error(`the cluster did not become ok: ${states.join(' / ')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Starts a cluster of `masters` masters (no replicas), stopped after the test file; undefined without the binaries. */
export async function startRedisCluster(masters = 3): Promise<RedisClusterServer | undefined> {
  if (!HAVE_CLUSTER) return undefined;
  const dir = mkdtempSync(join(tmpdir(), 'stratacache-cluster-'));
  dirs.push(dir);
  const ports: number[] = [];
  const children = new Map<number, ChildProcess>();
  for (let i = 0; i < masters; i++) {
    const port = await freeClusterPort();
    ports.push(port);
    children.set(port, await launch(port, dir));
  }
  await run('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'], { timeout: 60_000 });
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
