/**
 * The cache in front of a raw Node handler.
 *   npx tsx examples/raw.ts            # serves on PORT (default 3000) until Ctrl-C
 *   npx tsx examples/raw.ts --check    # starts on a free port, requests a page twice, exits
 */
import http from 'node:http';
import { createCache } from 'stratacache';

const cache = createCache({ maxSize: 32 * 1024 * 1024, defaultTtl: 30_000 });
let renders = 0;

const server = http.createServer(
  cache.wrap(async (req, res) => {
    renders++;
    await new Promise((r) => setTimeout(r, 100)); // a slow render
    res.setHeader('content-type', 'text/html; charset=utf-8');
    res.setHeader('cache-control', 'public, max-age=60');
    res.end(`<h1>Rendered ${req.url} (render #${renders})</h1>\n`);
  }),
);

const check = process.argv.includes('--check');
server.listen(check ? 0 : Number(process.env.PORT ?? 3000), '127.0.0.1', async () => {
  const { port } = server.address() as { port: number };
  console.log(`raw example on http://127.0.0.1:${port}/`);
  if (!check) return;
  for (let i = 0; i < 2; i++) {
    const res = await fetch(`http://127.0.0.1:${port}/hello`);
    console.log(res.status, res.headers.get('x-cache'), (await res.text()).trim());
  }
  console.log(`renders: ${renders}`);
  server.close();
  await cache.close();
});
