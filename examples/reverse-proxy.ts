/**
 * The cache as a caching reverse proxy, in code: createProxy() forwards every request to an
 * upstream over a bounded keep-alive pool, and cache.wrap() caches what comes back. (The CLI,
 * `stratacache serve`, runs exactly this; see examples/reverse-proxy/stratacache.config.json.)
 *   npx tsx examples/reverse-proxy.ts            # serves on PORT (default 3000) until Ctrl-C
 *   npx tsx examples/reverse-proxy.ts --check    # starts on a free port, requests a page twice, exits
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createCache, createProxy } from 'stratacache';

// The upstream: any HTTP server; here a small one in this process, on a free port.
let renders = 0;
const origin = http.createServer((req, res) => {
  renders++;
  res.setHeader('content-type', 'text/html; charset=utf-8');
  res.setHeader('cache-control', 'public, max-age=60');
  res.end(`<h1>${req.url} from the upstream</h1>\n`);
});
await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
const upstream = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`;

const cache = createCache({ maxSize: 64 * 1024 * 1024 });
const server = http.createServer(cache.wrap(createProxy({ upstream, timeout: 10_000, maxSockets: 32 })));

const check = process.argv.includes('--check');
server.listen(check ? 0 : Number(process.env.PORT ?? 3000), '127.0.0.1', async () => {
  const { port } = server.address() as AddressInfo;
  console.log(`reverse-proxy example on http://127.0.0.1:${port}/ in front of ${upstream}`);
  if (!check) return;
  for (let i = 0; i < 2; i++) {
    const res = await fetch(`http://127.0.0.1:${port}/hello`);
    console.log(res.status, res.headers.get('x-cache'), (await res.text()).trim());
  }
  console.log(`renders: ${renders}`);
  server.close();
  origin.close();
  await cache.close();
});
