/**
 * The cache with Hono on Node: `cache.fetch(app.fetch)` is a fetch handler like `app.fetch`,
 * served by @hono/node-server. Works the same for any WHATWG `(request) => Response` handler.
 *   npx tsx examples/hono.ts [--check]
 */
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { createCache } from 'stratacache';

const cache = createCache();
let renders = 0;

const app = new Hono();
app.get('/hello/:name', (c) => {
  renders++;
  c.header('cache-control', 'public, max-age=60');
  return c.json({ hello: c.req.param('name'), renderedAt: new Date().toISOString() });
});

const check = process.argv.includes('--check');
const server = serve({ fetch: cache.fetch(app.fetch), port: check ? 0 : Number(process.env.PORT ?? 3000), hostname: '127.0.0.1' }, async ({ port }) => {
  console.log(`hono example on http://127.0.0.1:${port}/hello/ada`);
  if (!check) return;
  for (let i = 0; i < 2; i++) {
    const res = await fetch(`http://127.0.0.1:${port}/hello/ada`);
    console.log(res.status, res.headers.get('x-cache'), await res.text());
  }
  console.log(`renders: ${renders}`);
  server.close();
  await cache.close();
});
