/**
 * The cache with Express, both ways:
 *   app.use(cache.middleware())          caches what later middleware renders
 *   http.createServer(cache.wrap(app))   answers hits before Express runs at all (faster)
 *   npx tsx examples/express.ts [--check]
 */
import http from 'node:http';
import express from 'express';
import { createCache } from 'stratacache';

const cache = createCache();
let renders = 0;

const app = express();
app.use(cache.middleware());
app.get('/products/:id', (req, res) => {
  renders++;
  res.set('cache-control', 'public, max-age=60').json({ id: req.params.id, renderedAt: new Date().toISOString() });
});

const check = process.argv.includes('--check');
const server = http.createServer(app);
server.listen(check ? 0 : Number(process.env.PORT ?? 3000), '127.0.0.1', async () => {
  const { port } = server.address() as { port: number };
  console.log(`express example on http://127.0.0.1:${port}/products/42`);
  if (!check) return;
  for (let i = 0; i < 2; i++) {
    const res = await fetch(`http://127.0.0.1:${port}/products/42?utm_source=x`);
    console.log(res.status, res.headers.get('x-cache'), await res.text());
  }
  console.log(`renders: ${renders}`);
  server.close();
  await cache.close();
});
