/**
 * The cache with Fastify 5: a plugin whose onRequest hook answers hits before body parsing,
 * validation and the route handler; misses run the route and store what it sends.
 *   npx tsx examples/fastify.ts [--check]
 */
import Fastify from 'fastify';
import { createCache } from 'stratacache';

const cache = createCache();
let renders = 0;

const app = Fastify();
await app.register(cache.fastify());
app.get('/products/:id', async (request, reply) => {
  renders++;
  reply.header('cache-control', 'public, max-age=60');
  return { id: (request.params as { id: string }).id, renderedAt: new Date().toISOString() };
});

const check = process.argv.includes('--check');
await app.listen({ port: check ? 0 : Number(process.env.PORT ?? 3000), host: '127.0.0.1' });
const { port } = app.server.address() as { port: number };
console.log(`fastify example on http://127.0.0.1:${port}/products/42`);
if (check) {
  for (let i = 0; i < 2; i++) {
    const res = await fetch(`http://127.0.0.1:${port}/products/42`);
    console.log(res.status, res.headers.get('x-cache'), await res.text());
  }
  console.log(`renders: ${renders}`);
  await app.close();
  await cache.close();
}
