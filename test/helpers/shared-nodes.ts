/**
 * Caches sharing a store, each on its own server, in front of one origin that counts its renders:
 * the nodes of the tests of a shared tier (one Redis, a Redis Cluster). Servers and caches are
 * closed after the test file.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createCache } from '../../src/index.js';
import type { CacheOptions } from '../../src/options/types.js';
import type { CacheStore } from '../../src/stores/store.js';
import { closedAfterFile, listen, sleep } from './http.js';

const tracked = closedAfterFile();

/** An origin handler and its renders per URL. */
export interface CountingOrigin {
  renders: Map<string, number>;
  handler: (req: IncomingMessage, res: ServerResponse) => Promise<void>;
}

/** A handler taking `delayMs` per render that says which render of its URL it was (`<p>/a render 2</p>`), cacheable for a minute. */
export function countingOrigin(delayMs: number): CountingOrigin {
  const renders = new Map<string, number>();
  return {
    renders,
    handler: async (req, res) => {
      const n = (renders.get(req.url ?? '') ?? 0) + 1;
      renders.set(req.url ?? '', n);
      await sleep(delayMs);
      res.setHeader('content-type', 'text/html; charset=utf-8');
      res.setHeader('cache-control', 'public, max-age=60');
      res.end(`<p>${req.url} render ${n}</p>`);
    },
  };
}

/** `count` nodes, each a cache with its own memory over the store `makeStore` gives it, on its own server. */
export async function sharedNodes<S extends CacheStore>(
  count: number,
  makeStore: () => Promise<S>,
  handler: (req: IncomingMessage, res: ServerResponse) => Promise<void>,
  cacheOptions: Omit<CacheOptions, 'stores'> = {},
): Promise<Array<{ url: string; store: S; cache: ReturnType<typeof createCache> }>> {
  const out: Array<{ url: string; store: S; cache: ReturnType<typeof createCache> }> = [];
  for (let i = 0; i < count; i++) {
    const store = await makeStore();
    const cache = createCache({ stores: [store], ...cacheOptions });
    tracked.caches.push(cache);
    const server = await listen(cache.wrap(handler));
    tracked.servers.push(server);
    out.push({ url: server.url, store, cache });
  }
  return out;
}
