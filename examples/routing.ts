/**
 * Per-route rules and a CDN in front: lifetimes by path, a bypassed account area, tags by
 * route, and every invalidation pushed to Fastly as a soft purge by surrogate key.
 *   FASTLY_SERVICE_ID=... FASTLY_TOKEN=... npx tsx examples/routing.ts   # serves on PORT (3000)
 * Then: curl 'http://127.0.0.1:3000/_stratacache/explain?url=/blog/hello'   (or: npx stratacache explain /blog/hello)
 */
import http from 'node:http';
import { createCache } from 'stratacache';

const cache = createCache({
  rules: [
    { match: '/account/**', bypass: true },
    { match: '/assets/**', ttl: 86_400_000, name: 'assets' },
    { match: '/blog/**', ttl: 300_000, staleWhileRevalidate: 60_000, tags: ['blog'] },
    { match: '/api/**', method: 'GET', ttl: 5_000, cacheStatuses: [200] },
    { match: '/news/**', host: '*.example.com', ttl: 60_000, override: true },
  ],
  cdn: {
    provider: 'fastly',
    serviceId: process.env.FASTLY_SERVICE_ID ?? 'SERVICE_ID',
    token: process.env.FASTLY_TOKEN ?? 'FASTLY_API_TOKEN',
  },
  cacheStatusDetail: true,
});
cache.on('error', (error) => console.log(`reported: ${error.message}`));

http
  .createServer(
    cache.wrap((req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'surrogate-key': 'site' });
      res.end(`rendered ${req.url ?? '/'}\n`);
    }),
  )
  .listen(Number(process.env.PORT ?? 3000), '127.0.0.1');

// After publishing a post: stale here at once, purged at Fastly once the new page is stored.
export async function published(path: string): Promise<void> {
  await cache.invalidate(path, { refetch: true });
}
