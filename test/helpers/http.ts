/**
 * Test helpers: real servers on 127.0.0.1:0, closed after each test file, and a small request
 * function that returns status, headers and body as a user sees them.
 */
import http, { type IncomingMessage, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, type TestContext } from 'node:test';

/** A listening server and its base URL. */
export interface Running {
  server: Server;
  url: string;
  port: number;
  close(): Promise<void>;
}

/** Starts `handler` (or an existing server) on 127.0.0.1 on a free port. */
export async function listen(handlerOrServer: RequestListener | Server): Promise<Running> {
  const server = typeof handlerOrServer === 'function' ? http.createServer(handlerOrServer) : handlerOrServer;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    server,
    port,
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** What a client received. */
export interface Reply {
  status: number;
  headers: IncomingMessage['headers'];
  body: string;
  raw: Buffer;
}

/** Sends one request with a fresh connection (no pooling surprises) and reads the whole reply. */
export function request(url: string, options: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: options.method ?? 'GET', headers: options.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const raw = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: raw.toString('utf8'), raw });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

/** Resolves after `ms` milliseconds. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Servers and caches a test file opens, all closed after the file (servers first). */
export function closedAfterFile(): { servers: Running[]; caches: Array<{ close(): Promise<void> }> } {
  const tracked = { servers: [] as Running[], caches: [] as Array<{ close(): Promise<void> }> };
  after(async () => {
    for (const s of tracked.servers) await s.close();
    for (const c of tracked.caches) await c.close();
  });
  return tracked;
}

/** Closes `running`, then `cache`, when the test ends; returns the cache and the server's base URL. */
export function untilTestEnds<C extends { close(): Promise<void> }>(t: TestContext, running: Running, cache: C): { cache: C; url: string } {
  t.after(async () => {
    await running.close();
    await cache.close();
  });
  return { cache, url: running.url };
}

/** A port that was free on 127.0.0.1 a moment ago (for a child process that must be told its port). */
export async function freePort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
