/**
 * Publishing without flooding the origin: a slow render server behind the cache, flushed the way
 * an AEM flush agent does it (a refetching flush), while clients keep reading.
 *   npx tsx examples/publish.ts            # serves on PORT (default 3000); flush with e.g.
 *     curl -H 'CQ-Action: Activate' -H 'CQ-Handle: /content/site/en/page' \
 *          --data-binary $'/content/site/en/page.html\n' http://127.0.0.1:3000/dispatcher/invalidate.cache
 *   npx tsx examples/publish.ts --check    # primes, flushes under load, prints what clients saw, exits
 */
import http from 'node:http';
import { createCache } from 'stratacache';

const cache = createCache({
  gracePeriod: 10_000,
  statLevel: 2,
  autoInvalidate: ['*.html'],
  flush: { allowedClients: ['127.0.0.1/32', '::1/128'], token: process.env.FLUSH_TOKEN },
  refetch: { concurrency: 2 },
});

let version = 1;
const renders = new Map<string, number>();
const server = http.createServer(
  cache.wrap(async (req, res) => {
    renders.set(req.url ?? '', (renders.get(req.url ?? '') ?? 0) + 1);
    await new Promise((r) => setTimeout(r, 200)); // a slow render tier
    res.setHeader('content-type', 'text/html; charset=utf-8');
    res.setHeader('cache-control', 'max-age=3600');
    res.end(`<h1>${req.url} v${version}</h1>`);
  }),
);

const check = process.argv.includes('--check');
server.listen(check ? 0 : Number(process.env.PORT ?? 3000), '127.0.0.1', async () => {
  const { port } = server.address() as { port: number };
  const base = `http://127.0.0.1:${port}`;
  console.log(`publish example on ${base}/content/site/en/page.html`);
  if (!check) return;
  const pages = ['/content/site/en/page.html', '/content/site/en.html', '/content/site/de/page.html'];
  const get = async (path: string): Promise<string> => {
    const res = await fetch(base + path);
    return `${res.headers.get('x-cache')} ${await res.text()}`;
  };

  await cache.prime(pages, { host: `127.0.0.1:${port}` });
  console.log('primed:', await get(pages[0]!));

  // The author publishes version 2 of /content/site/en/page; its flush agent asks for a refetch.
  version = 2;
  const flush = await fetch(`${base}/dispatcher/invalidate.cache`, {
    method: 'POST',
    headers: { 'CQ-Action': 'Activate', 'CQ-Handle': '/content/site/en/page', 'Content-Type': 'text/plain' },
    body: `${pages[0]}\n`,
  });
  console.log('flush:', flush.status, (await flush.text()).trim());

  // 100 clients read during the refetch: every one is answered from the cache (the old copy,
  // STALE, or the new one once its refetch has landed, HIT); none waits for the render tier.
  const during = await Promise.all(Array.from({ length: 100 }, (_, i) => get(pages[i % 3]!)));
  const count = (status: string): number => during.filter((d) => d.startsWith(`${status} `)).length;
  const stale = count('STALE');
  const hit = count('HIT');
  console.log(`100 requests during the flush: ${stale} STALE, ${hit} HIT, ${100 - stale - hit} from the render tier`);
  await new Promise((r) => setTimeout(r, 400)); // the refetch lands
  for (const page of pages) console.log(`after: ${page} -> ${await get(page)}`);
  console.log('renders:', JSON.stringify(Object.fromEntries(renders)));
  server.close();
  await cache.close();
});
