/**
 * `npm start`: the cache in front of a slow render server, on embedded defaults. It plays a short
 * scenario (cold miss, warm hit, a burst of 50 concurrent cold requests, a conditional request,
 * a personalised page that must not be shared) and prints what a client sees, then exits.
 * `npm start -- --serve` keeps the server running on PORT (default 3000).
 */
import http from 'node:http';
import { createCache } from 'stratacache';

const cache = createCache();
const renders = new Map<string, number>();

/** The "render tier": 250 ms per page. */
async function render(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const path = (req.url ?? '/').split('?')[0]!;
  renders.set(path, (renders.get(path) ?? 0) + 1);
  await new Promise((r) => setTimeout(r, 250));
  if (path === '/account') {
    res.setHeader('set-cookie', 'session=abc123; HttpOnly');
    res.setHeader('cache-control', 'private');
  } else {
    res.setHeader('cache-control', 'public, max-age=300');
    res.setHeader('etag', `"${path.length}-v1"`);
  }
  res.setHeader('content-type', 'text/html; charset=utf-8');
  res.end(`<!doctype html><title>${path}</title><p>Rendered ${path} at ${new Date().toISOString()}</p>\n`);
}

const server = http.createServer(cache.wrap(render));
const serve = process.argv.includes('--serve');

server.listen(serve ? Number(process.env.PORT ?? 3000) : 0, '127.0.0.1', async () => {
  const { port } = server.address() as { port: number };
  const base = `http://127.0.0.1:${port}`;
  console.log(`stratacache demo: a 250 ms render server behind the cache at ${base}\n`);
  if (serve) return;

  const show = async (label: string, path: string, headers: Record<string, string> = {}): Promise<void> => {
    const t0 = performance.now();
    const res = await fetch(base + path, { headers });
    await res.arrayBuffer();
    const ms = (performance.now() - t0).toFixed(1).padStart(6);
    console.log(`${label.padEnd(34)} ${res.status} ${String(res.headers.get('x-cache')).padEnd(5)} ${ms} ms  age=${res.headers.get('age') ?? '-'}`);
  };

  await show('GET /home (cold)', '/home');
  await show('GET /home (warm)', '/home');
  await show('GET /home?b=2&a=1 then ?a=1&b=2', '/home?b=2&a=1');
  await show('', '/home?a=1&b=2');
  await show('GET /home If-None-Match', '/home', { 'if-none-match': '"5-v1"' });
  await show('GET /account (private, Set-Cookie)', '/account');
  await show('GET /account again (never shared)', '/account');

  const t0 = performance.now();
  const burst = await Promise.all(Array.from({ length: 50 }, () => fetch(`${base}/news`).then((r) => r.text())));
  console.log(`\n50 concurrent cold GET /news: ${new Set(burst).size} distinct body, ${renders.get('/news')} render, ${(performance.now() - t0).toFixed(0)} ms`);
  console.log('renders per path:', Object.fromEntries(renders));
  console.log('stats:', cache.stats());
  server.close();
  await cache.close();
});
