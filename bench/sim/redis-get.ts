/**
 * The Redis hop of the cluster simulation, measured: p50/p99 of a GET of one entry-sized value
 * (20 KB body and its metadata, as bench/cluster.ts serves) over loopback with ioredis, against a
 * redis-server started here on a free port (no persistence) and stopped at the end.
 *
 * Run: `npx tsx bench/sim/redis-get.ts` (needs `redis-server` on PATH). BENCH_SAMPLES (default 5000).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';
import { ENTRY_BYTES } from './scenarios.js';

const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 5000);

const probe = createServer();
await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
const { port } = probe.address() as { port: number };
await new Promise((resolve) => probe.close(resolve));

const server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'inherit'] });
let out = '';
server.stdout.on('data', (c: Buffer) => (out += c.toString()));
while (!out.includes('Ready to accept connections')) await once(server.stdout, 'data');

const client = new Redis({ port, host: '127.0.0.1', lazyConnect: false });
try {
  const value = Buffer.alloc(ENTRY_BYTES, 'x');
  await client.set('e:page', value);
  for (let i = 0; i < 500; i++) await client.getBuffer('e:page'); // warm-up
  const ms: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    const t0 = performance.now();
    const got = await client.getBuffer('e:page');
    ms.push(performance.now() - t0);
    if (got?.length !== ENTRY_BYTES) throw new Error('bad reply');
  }
  ms.sort((a, b) => a - b);
  const q = (p: number): string => (ms[Math.floor(p * (ms.length - 1))]! * 1000).toFixed(0);
  console.log(`Redis GET of ${ENTRY_BYTES} bytes over loopback, ${SAMPLES} sequential: p50 ${q(0.5)} µs, p99 ${q(0.99)} µs (node ${process.version})`);
} finally {
  client.disconnect();
  server.kill('SIGKILL');
}
