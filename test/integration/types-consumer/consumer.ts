/**
 * A consumer of the published package, compiled by test/integration/types-consumer.test.ts in a
 * fresh strict project (`skipLibCheck: false`) against the packed tarball. It touches the main
 * options types and each entry point so their declarations, and every declaration they reach,
 * are checked. It is never run.
 */
import http from 'node:http';
import {
  createCache,
  createProxy,
  diskStore,
  memoryStore,
  redisStore,
  TRACING_CHANNELS,
  CacheError,
  type CacheOptions,
  type CacheStats,
  type CacheStore,
  type DataOptions,
  type Entry,
  type FetchHandler,
  type FlushOptions,
  type LookupContext,
  type PeersOptions,
  type ProxyOptions,
} from 'stratacache';
import { storeContract } from 'stratacache/testing';

const peers: PeersOptions = { self: 'http://10.0.0.1:3000', nodes: ['http://10.0.0.2:3000'], secret: 'a-secret-of-16-chars', strategy: 'owner' };
const flush: FlushOptions = { allowedClients: ['127.0.0.1/32'], token: 'token' };
const data: DataOptions = { maxSize: 1024 * 1024 };
const options: CacheOptions = {
  maxSize: 64 * 1024 * 1024,
  defaultTtl: 30_000,
  ignoreUrlParams: ['utm_*'],
  key: { host: 'www.example.com', headers: ['x-forwarded-proto'] },
  stores: [memoryStore({ maxSize: 1024 * 1024 }), diskStore({ dir: '/tmp/cache', maxSize: 1024 ** 3 }), redisStore({ url: 'redis://127.0.0.1:6379' })],
  compress: { encodings: ['br', 'gzip'] },
  flush,
  peers,
  data,
  includes: true,
};
const cache = createCache(options);

const proxyOptions: ProxyOptions = { upstream: 'http://127.0.0.1:8080', timeout: 10_000 };
http.createServer(cache.wrap(createProxy(proxyOptions)));
const connect: (req: http.IncomingMessage, res: http.ServerResponse, next: (err?: unknown) => void) => void = cache.middleware();
const fetchHandler: FetchHandler = cache.fetch(async (request: Request) => new Response(request.url));
void connect;
void fetchHandler;
void cache.koa();
void cache.fastify();

cache.on('error', (error) => console.error(error instanceof CacheError ? error.code : error));
const stats: CacheStats = cache.stats();
console.log(stats.hits, TRACING_CHANNELS.lookup);
const span: Partial<LookupContext> = { key: 'k' };
console.log(span);
await cache.invalidate('/products', { refetch: ['/products'] });
const value = await cache.data.get('k', async () => ({ n: 1 }), { ttl: 60_000 });
console.log(value);
await cache.close();

storeContract('memory', ({ maxSize }): CacheStore => memoryStore({ maxSize }));
const entry: Entry | undefined = undefined;
console.log(entry);
