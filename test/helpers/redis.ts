/**
 * A real `redis-server` for tests: started on a free loopback port with no persistence, stopped
 * (and restartable on the same port) by the test. Without the binary, `startRedis` returns
 * undefined and the test must `t.skip()` with {@link NO_REDIS}; under CI a missing binary throws
 * instead (`requires.ts`), so no Redis test is ever skipped there.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { after } from 'node:test';
import { missing } from './requires.js';

/** The reason a Redis test is skipped on a machine without the server. */
export const NO_REDIS = 'redis-server not installed: apt-get install redis-server (.ci/run does it) to run the Redis tests';

const HAVE_REDIS = spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;

/** A running server. */
export interface RedisServer {
  port: number;
  url: string;
  /** Kills the server (SIGKILL: no goodbye to the clients). */
  kill(): Promise<void>;
  /** Starts it again on the same port (empty: no persistence). */
  restart(): Promise<void>;
  /** Freezes the server (SIGSTOP): connections stay open, nothing answers. */
  pause(): void;
  /** Lets a frozen server go on (SIGCONT). */
  resume(): void;
}

const running = new Set<ChildProcess>();
after(() => {
  for (const p of running) p.kill('SIGKILL');
});

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * Starts `redis-server` on `port` (loopback, no persistence, plus `extra` arguments); resolves
 * once it accepts connections. Killed after the test file if still running.
 */
export function launchRedis(port: number, extra: readonly string[] = []): Promise<ChildProcess> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'notice', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  child.on('exit', () => running.delete(child));
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`redis-server did not start on ${port}: ${out}`)), 20_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('Ready to accept connections')) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited with ${code}: ${out}`));
    });
  });
}

/** Kills a server (SIGKILL); resolves once it has exited. */
export function stopRedis(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

/** Starts a server on a free port, stopped after the test file; undefined without the binary. */
export async function startRedis(): Promise<RedisServer | undefined> {
  if (!HAVE_REDIS) return missing(NO_REDIS);
  const port = await freePort();
  let child = await launchRedis(port);
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    kill: () => stopRedis(child),
    restart: async () => {
      await stopRedis(child);
      child = await launchRedis(port);
    },
    pause: () => void child.kill('SIGSTOP'),
    resume: () => void child.kill('SIGCONT'),
  };
}
