/**
 * The cache in front of a render server that is not Node (here Python's http.server):
 * `createProxy` forwards each miss over keep-alive connections, and every cache feature works
 * through it, background refreshes included. The same as
 * `npx stratacache --upstream http://127.0.0.1:8080`, in code.
 *   npx tsx examples/python-upstream.ts [--check]
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { createCache, createProxy } from 'stratacache';

// The render server: python3 examples/render-server.py prints the port it listens on.
const python = spawn('python3', [fileURLToPath(new URL('./render-server.py', import.meta.url))], { stdio: ['ignore', 'pipe', 'inherit'] });
const [line] = (await once(python.stdout!, 'data')) as [Buffer];
const upstream = `http://127.0.0.1:${line.toString().trim()}`;

const cache = createCache();
const server = http.createServer(cache.wrap(createProxy({ upstream })));

const check = process.argv.includes('--check');
server.listen(check ? 0 : Number(process.env.PORT ?? 3000), '127.0.0.1', async () => {
  const { port } = server.address() as { port: number };
  console.log(`caching proxy on http://127.0.0.1:${port}/ in front of ${upstream}`);
  if (!check) return;
  for (let i = 0; i < 2; i++) {
    const res = await fetch(`http://127.0.0.1:${port}/news`);
    console.log(res.status, res.headers.get('x-cache'), (await res.text()).trim());
  }
  // Asked of the render server itself: how often it rendered /news.
  console.log(`renders: ${await (await fetch(`${upstream}/_renders?path=/news`)).text()}`);
  server.close();
  python.kill();
  await cache.close();
});
