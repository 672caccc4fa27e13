/**
 * Three tiers and stored compression: memory, a disk directory that survives restarts, and a
 * Redis (or Valkey) shared by every node pointed at it; pages compressed once when stored.
 *   REDIS_URL=redis://127.0.0.1:6379 npx tsx examples/tiers.ts           # serves on PORT (3000)
 *   REDIS_URL=redis://127.0.0.1:6379 npx tsx examples/tiers.ts --check   # requests a page, exits
 * Redis down or absent changes nothing a client sees: the tier is skipped and reported.
 */
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCache, diskStore, memoryStore, redisStore } from 'stratacache';

const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const cacheDir = process.env.CACHE_DIR ?? mkdtempSync(join(tmpdir(), 'stratacache-example-'));
let renders = 0;

const cache = createCache({
  stores: [
    memoryStore({ maxSize: 64 * 1024 * 1024 }),
    diskStore({ dir: cacheDir, maxSize: 1024 ** 3 }),
    await redisStore({ url: redisUrl, prefix: 'example:' }),
  ],
  compress: true,
});
cache.on('error', (error) => console.log(`reported: ${error.message}`));

const server = http.createServer(
  cache.wrap((req, res) => {
    renders++;
    res.setHeader('content-type', 'text/html; charset=utf-8');
    res.setHeader('cache-control', 'public, max-age=60');
    res.end(`<h1>${req.url}</h1>${'<p>A page worth compressing.</p>'.repeat(100)}\n`);
  }),
);

const check = process.argv.includes('--check');
server.listen(check ? 0 : Number(process.env.PORT ?? 3000), '127.0.0.1', async () => {
  const { port } = server.address() as { port: number };
  console.log(`tiers example on http://127.0.0.1:${port}/`);
  if (!check) return;
  const get = (encoding: string) => new Promise<http.IncomingMessage>((resolve) => http.get({ port, path: `/page-${process.pid}`, headers: { 'accept-encoding': encoding } }, (res) => resolve(res.resume())));
  const first = await get('br, gzip');
  console.log(first.statusCode, first.headers['x-cache'], first.headers['content-encoding'] ?? 'identity');
  while (cache.stats().compressions === 0) await new Promise((r) => setTimeout(r, 10));
  const second = await get('br, gzip');
  console.log(second.statusCode, second.headers['x-cache'], second.headers['content-encoding'] ?? 'identity', second.headers['content-length'], 'bytes');
  console.log(`redis: ${JSON.stringify(cache.stats().tiers.find((t) => t.name === 'redis'))}`);
  console.log(`renders: ${renders}`);
  server.close();
  await cache.close();
  if (process.env.CACHE_DIR === undefined) rmSync(cacheDir, { recursive: true, force: true });
});
