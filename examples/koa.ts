/**
 * The cache with Koa: caches ctx.body (string, Buffer, stream or JSON) set downstream.
 *   npx tsx examples/koa.ts [--check]
 */
import Koa from 'koa';
import { createCache } from 'stratacache';

const cache = createCache({ ignoreUrlParams: ['utm_*'] });
let renders = 0;

const app = new Koa();
app.use(cache.koa());
app.use(async (ctx) => {
  renders++;
  ctx.set('cache-control', 'public, max-age=60');
  ctx.body = { path: ctx.path, render: renders };
});

const check = process.argv.includes('--check');
const server = app.listen(check ? 0 : Number(process.env.PORT ?? 3000), '127.0.0.1', async () => {
  const { port } = server.address() as { port: number };
  console.log(`koa example on http://127.0.0.1:${port}/`);
  if (!check) return;
  for (const q of ['?utm_source=a', '?utm_source=b']) {
    const res = await fetch(`http://127.0.0.1:${port}/news${q}`);
    console.log(res.status, res.headers.get('x-cache'), await res.text());
  }
  console.log(`renders: ${renders}`);
  server.close();
  await cache.close();
});
