/**
 * A Next.js custom server with stratacache in front (`cache.wrap`) and behind (cache-handler.mjs):
 * one cache holds the pages it serves and Next's own entries, and every invalidation (Next's
 * revalidateTag / revalidatePath, `stratacache flush`) reaches both, on every instance sharing
 * its Redis. Build first: `npx next build examples/next-cluster`.
 *   REDIS_URL=redis://127.0.0.1:6379 PORT=3000 npx tsx examples/next-cluster/server.ts
 * DIRECT_PORT also serves Next alone (no cache.wrap) there, to watch Next's own cache.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { cache } from './cache-handler.mjs';

/** The part of Next's custom-server API used here. */
interface NextApp {
  prepare(): Promise<void>;
  getRequestHandler(): (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void>;
  close(): Promise<void>;
}
// Imported by a name the type-checker does not follow (Next's declarations change `process.env`'s
// type for the whole project). In a Next project: `import next from 'next'`.
const NEXT: string = 'next';
const { default: next } = (await import(NEXT)) as { default: (options: { dev: boolean; dir: string; quiet?: boolean }) => NextApp };

const app = next({ dev: false, dir: fileURLToPath(new URL('.', import.meta.url)), quiet: true });
await app.prepare();
const handle = app.getRequestHandler();
const servers = [http.createServer(cache.wrap((req, res) => handle(req, res)))];
if (process.env.DIRECT_PORT !== undefined) servers.push(http.createServer((req, res) => void handle(req, res)));
const ports = [Number(process.env.PORT ?? 3000), Number(process.env.DIRECT_PORT)];
await Promise.all(servers.map((s, i) => new Promise<void>((resolve) => s.listen(ports[i], '127.0.0.1', resolve))));
console.log(`ready ${servers.map((s) => (s.address() as AddressInfo).port).join(' ')}`);

process.once('SIGTERM', () => {
  for (const s of servers) s.close();
  void app.close().then(() => cache.close()).then(() => process.exit(0));
});
