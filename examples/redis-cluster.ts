/**
 * The shared tier on a Redis Cluster (or a Valkey cluster: same protocol): the store learns every
 * master and the slot map from the seed nodes, and spreads the pages over the slots.
 *   REDIS_CLUSTER=redis://127.0.0.1:7000,redis://127.0.0.1:7001 npx tsx examples/redis-cluster.ts           # serves on PORT (3000)
 *   REDIS_CLUSTER=redis://127.0.0.1:7000,redis://127.0.0.1:7001 npx tsx examples/redis-cluster.ts --check   # a miss, a hit, exits
 * Two processes started like this share their pages, their invalidations and one render per cold page.
 */
import http from 'node:http';
import { createCache, redisStore } from 'stratacache';

const seeds = (process.env.REDIS_CLUSTER ?? 'redis://127.0.0.1:7000').split(',');
let renders = 0;

const cache = createCache({
  stores: [await redisStore({ cluster: seeds, prefix: 'site:' })],
});
cache.on('error', (error) => console.log(`reported: ${error.message}`));

const server = http.createServer(
  cache.wrap((req, res) => {
    renders++;
    res.setHeader('content-type', 'text/html; charset=utf-8');
    res.setHeader('cache-control', 'public, max-age=60');
    res.end(`<h1>${req.url}</h1>\n`);
  }),
);

const check = process.argv.includes('--check');
server.listen(check ? 0 : Number(process.env.PORT ?? 3000), '127.0.0.1', async () => {
  const { port } = server.address() as { port: number };
  console.log(`redis cluster example on http://127.0.0.1:${port}/`);
  if (!check) return;
  const get = () => new Promise<http.IncomingMessage>((resolve) => http.get({ port, path: `/page-${process.pid}` }, (res) => resolve(res.resume())));
  for (let i = 0; i < 2; i++) {
    const res = await get();
    console.log(res.statusCode, res.headers['x-cache']);
  }
  const { tiers } = cache.stats();
  console.log(`redis: ${JSON.stringify(tiers.find((t) => t.name === 'redis'))}`);
  console.log(`renders: ${renders}`);
  server.close();
  await cache.close();
});
