/**
 * A render server whose pages are composed from cached data: a product page reads three API
 * calls (each cached for its own lifetime by `cache.data`) and includes a header fragment with
 * `<esi:include>` (filled at serve time with the fragment's own freshness). When the product
 * changes, the page showing it is refreshed: no tags written by hand.
 *   npx tsx examples/render-server.ts            # API and site on PORT (default 3000) until Ctrl-C
 *   npx tsx examples/render-server.ts --check    # free ports, a few requests, prints counts, exits
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createCache, type CacheOptions, type StrataCache } from 'stratacache';

/** The API's data and how many times each endpoint answered. */
export interface ApiState {
  product: { id: number; name: string };
  price: number;
  reviews: number;
  nav: string;
  /** While true every endpoint answers 503. */
  failing: boolean;
  calls: { products: number; prices: number; reviews: number; nav: number; notModified: number };
}

/**
 * A counting JSON API on 127.0.0.1: products (no cache headers: the page caches them with
 * `cache.data.get`), prices (`max-age=10, stale-if-error=300` and an ETag, so a stale price is
 * revalidated),
 * reviews (`max-age=120, stale-if-error=600`) and the navigation (`max-age=60, stale-if-error=600`).
 */
export function createApi(): { server: http.Server; state: ApiState } {
  const state: ApiState = {
    product: { id: 42, name: 'Teapot' },
    price: 30,
    reviews: 3,
    nav: 'Home | Teapots | Cups',
    failing: false,
    calls: { products: 0, prices: 0, reviews: 0, nav: 0, notModified: 0 },
  };
  const json = (res: ServerResponse, body: unknown, headers: Record<string, string> = {}): void => {
    res.writeHead(200, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  };
  const server = http.createServer((req, res) => {
    const path = req.url ?? '/';
    const name = path.startsWith('/products/') ? 'products' : path.startsWith('/prices/') ? 'prices' : path.startsWith('/reviews/') ? 'reviews' : path === '/nav' ? 'nav' : undefined;
    if (name === undefined) return void res.writeHead(404).end();
    state.calls[name]++;
    if (state.failing) return void res.writeHead(503, { 'content-type': 'text/plain' }).end('API down');
    if (name === 'products') return json(res, state.product);
    if (name === 'prices') {
      const etag = `"price-${state.price}"`;
      if (req.headers['if-none-match'] === etag) {
        state.calls.notModified++;
        return void res.writeHead(304, { etag, 'cache-control': 'max-age=10, stale-if-error=300' }).end();
      }
      return json(res, { amount: state.price }, { etag, 'cache-control': 'max-age=10, stale-if-error=300' });
    }
    if (name === 'reviews') return json(res, { count: state.reviews }, { 'cache-control': 'max-age=120, stale-if-error=600' });
    return json(res, { links: state.nav }, { 'cache-control': 'max-age=60, stale-if-error=600' });
  });
  return { server, state };
}

/** How many times each page of the site rendered. */
export interface SiteCounts {
  page: number;
  header: number;
}

/** GETs JSON without the cache: what a loader given to `cache.data.get` does. */
function getJson(url: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    http
      .get(url, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          if (res.statusCode !== 200) return reject(new Error(`${url} answered ${res.statusCode}`));
          resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        });
      })
      .on('error', reject);
  });
}

/**
 * The site: `/product/:id` (a page from three API calls, `max-age=30`, including the header),
 * `/fragments/header` (`max-age=5`, from the navigation API), and two deliberate loops:
 * `/loop` includes `/fragments/loop`, which includes itself; `/a` fetches `/b`, which fetches `/a`.
 */
export function createSite(cache: StrataCache, api: string): { handler: (req: IncomingMessage, res: ServerResponse) => Promise<void>; counts: SiteCounts } {
  const counts: SiteCounts = { page: 0, header: 0 };
  const html = (res: ServerResponse, body: string, maxAge: number): void => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': `max-age=${maxAge}, stale-if-error=600` });
    res.end(body);
  };
  const handler = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = req.url ?? '/';
    const product = /^\/product\/(\d+)$/.exec(path);
    if (product) {
      counts.page++;
      const id = product[1]!;
      const [item, price, reviews] = await Promise.all([
        cache.data.get(`product:${id}`, () => getJson(`${api}/products/${id}`), { ttl: 60_000, staleWhileRevalidate: 30_000, staleIfError: 300_000 }),
        cache.data.fetch(`${api}/prices/${id}`).then((r) => r.json()),
        cache.data.fetch(`${api}/reviews/${id}`).then((r) => r.json()),
      ]);
      const { name } = item as { name: string };
      const { amount } = price as { amount: number };
      const { count } = reviews as { count: number };
      return html(res, `<!doctype html><body><esi:include src="/fragments/header"/><main><h1>${name}</h1><p>$${amount}</p><p>${count} reviews</p></main></body>`, 30);
    }
    if (path === '/fragments/header') {
      counts.header++;
      const nav = (await (await cache.data.fetch(`${api}/nav`)).json()) as { links: string };
      return html(res, `<header>${nav.links} (header render ${counts.header})</header>`, 5);
    }
    if (path === '/loop') return html(res, '<body><esi:include src="/fragments/loop"/></body>', 30);
    if (path === '/fragments/loop') return html(res, '<div><esi:include src="/fragments/loop"/></div>', 30);
    if (path === '/a' || path === '/b') {
      try {
        const inner = await cache.data.fetch(path === '/a' ? '/b' : '/a');
        if (inner.status === 200) return html(res, inner.text(), 30);
        res.writeHead(500, { 'content-type': 'text/plain' });
        return void res.end(inner.text()); // the inner page's error, passed up
      } catch (error) {
        res.writeHead(500, { 'content-type': 'text/plain' });
        return void res.end(`${(error as { code?: string }).code}: ${(error as Error).message}`);
      }
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found');
  };
  return { handler, counts };
}

/** Starts the API and the cached site on 127.0.0.1 (port 0 picks free ports). */
export async function startRenderServer(options: { port?: number; cache?: CacheOptions } = {}) {
  const { server: apiServer, state } = createApi();
  await new Promise<void>((r) => apiServer.listen(0, '127.0.0.1', r));
  const api = `http://127.0.0.1:${(apiServer.address() as AddressInfo).port}`;
  const cache = createCache({ includes: true, ...options.cache });
  const { handler, counts } = createSite(cache, api);
  const site = http.createServer(cache.wrap(handler));
  await new Promise<void>((r) => site.listen(options.port ?? 0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(site.address() as AddressInfo).port}`;
  return {
    url,
    api,
    state,
    counts,
    cache,
    async close(): Promise<void> {
      for (const s of [site, apiServer]) {
        s.closeAllConnections();
        await new Promise<void>((r) => s.close(() => r()));
      }
      await cache.close();
    },
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const check = process.argv.includes('--check');
  const running = await startRenderServer({ port: check ? 0 : Number(process.env.PORT ?? 3000) });
  console.log(`render server on ${running.url}/product/42 (API on ${running.api})`);
  if (check) {
    for (let i = 0; i < 2; i++) {
      const res = await fetch(`${running.url}/product/42`);
      const body = await res.text();
      console.log(res.status, res.headers.get('x-cache'), body.includes('<header>') && !body.includes('<esi:') ? 'assembled' : 'NOT assembled');
    }
    running.state.product.name = 'Kettle';
    running.cache.data.delete('product:42');
    console.log('after the product changed:', (await fetch(`${running.url}/product/42`)).headers.get('x-cache'));
    await new Promise((r) => setTimeout(r, 200));
    const res = await fetch(`${running.url}/product/42`);
    console.log(res.headers.get('x-cache'), (await res.text()).includes('Kettle') ? 'shows Kettle' : 'still Teapot');
    console.log(`page renders: ${running.counts.page}, header renders: ${running.counts.header}, product API calls: ${running.state.calls.products}`);
    await running.close();
  }
}
