/**
 * The cache in front of a Next.js custom server: Next's request handler is an ordinary
 * `(req, res)` handler, so `http.createServer(cache.wrap(nextHandler))` puts the cache in front
 * of every page and route handler. What gets stored follows Next's own Cache-Control:
 *   static pages           s-maxage=31536000 (capped by maxTtl)          stored
 *   ISR (revalidate = N)   s-maxage=N, stale-while-revalidate=...        stored, refreshed in the background
 *   dynamic pages          private, no-cache, no-store                   never stored (PASS)
 *   route handlers         whatever the handler sets                     stored when it says so
 * Build the app first: `npx next build examples/next-app`.
 *   npx tsx examples/next-server.ts [--check]
 */
import { existsSync } from 'node:fs';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { createCache } from 'stratacache';

/** The part of Next's custom-server API used here. */
interface NextApp {
  prepare(): Promise<void>;
  getRequestHandler(): (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void>;
  close(): Promise<void>;
}
// Imported by a name the type-checker does not follow: Next's own declarations would change
// `process.env`'s type for every file of this project. In a Next project, `import next from 'next'`.
const NEXT: string = 'next';
const { default: next } = (await import(NEXT)) as { default: (options: { dev: boolean; dir: string; quiet?: boolean }) => NextApp };

const dir = fileURLToPath(new URL('./next-app', import.meta.url));
if (!existsSync(`${dir}/.next/BUILD_ID`)) {
  console.error('build the app first: npx next build examples/next-app');
  process.exit(1);
}
const cache = createCache();
const app = next({ dev: false, dir, quiet: true });
await app.prepare();
const nextHandler = app.getRequestHandler();
const server = http.createServer(cache.wrap((req, res) => nextHandler(req, res)));

const check = process.argv.includes('--check');
server.listen(check ? 0 : Number(process.env.PORT ?? 3000), '127.0.0.1', async () => {
  const { port } = server.address() as { port: number };
  console.log(`next custom server on http://127.0.0.1:${port}/`);
  if (!check) return;
  for (const path of ['/', '/', '/isr', '/isr', '/dynamic', '/dynamic', '/api/time', '/api/time']) {
    const res = await fetch(`http://127.0.0.1:${port}${path}`);
    const body = await res.text();
    const shown = path.startsWith('/api') ? body : (/<h1>(.*?)<\/h1>/.exec(body)?.[1] ?? body.slice(0, 40)).replaceAll('<!-- -->', '');
    console.log(`${path} ${res.status} ${res.headers.get('x-cache')} ${res.headers.get('cache-control')} ${shown}`);
  }
  server.close();
  await app.close();
  await cache.close();
});
