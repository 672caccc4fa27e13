/**
 * Issue 18's defects, each a regression test through a real server: how every way a flight ends
 * reaches its waiters (private and Set-Cookie pages, origin errors, a leader whose client leaves,
 * a render that stalls), and invalidations that must win over renders already in flight (PURGE,
 * refetching flushes). Each asserts what clients see and how often the origin rendered.
 */
import assert from 'node:assert/strict';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { Readable, pipeline } from 'node:stream';
import { describe, test } from 'node:test';
import { createCache, type CacheOptions } from '../../src/index.js';
import { closedAfterFile, listen, request, sleep, type Reply } from '../helpers/http.js';

const tracked = closedAfterFile();

type Handler = (req: IncomingMessage, res: ServerResponse) => unknown;

/** A cache in front of `handler` on a real server. */
async function serve(handler: Handler, options: CacheOptions = {}): Promise<{ url: string; cache: ReturnType<typeof createCache> }> {
  const cache = createCache({ flush: { path: '/flush', allowedClients: ['127.0.0.1', '::1'] }, ...options });
  const running = await listen(cache.wrap(handler));
  tracked.servers.push(running);
  tracked.caches.push(cache);
  return { url: running.url, cache };
}

/** `n` concurrent GETs of `url` with the given per-request headers. */
function many(n: number, url: string, headers: (i: number) => Record<string, string> = () => ({})): Promise<Reply[]> {
  return Promise.all(Array.from({ length: n }, (_, i) => request(url, { headers: headers(i) })));
}

/** A GET that resolves with what arrived when the response ended or broke off, and whether it was complete. */
function fetchRaw(url: string, opts: { abortAfterBytes?: number } = {}): Promise<{ status: number; bytes: number; complete: boolean; error: boolean }> {
  return new Promise((resolve) => {
    let bytes = 0;
    let status = 0;
    const req = http.get(url, { agent: false }, (res) => {
      status = res.statusCode ?? 0;
      res.on('data', (c: Buffer) => {
        bytes += c.length;
        if (opts.abortAfterBytes !== undefined && bytes >= opts.abortAfterBytes) req.destroy();
      });
      res.on('end', () => resolve({ status, bytes, complete: res.complete, error: false }));
      res.on('error', () => resolve({ status, bytes, complete: false, error: true }));
      res.on('aborted', () => resolve({ status, bytes, complete: false, error: true }));
    });
    req.on('error', () => resolve({ status, bytes, complete: false, error: true }));
  });
}

describe('responses that are not storable for anyone but their own request', () => {
  for (const n of [2, 3, 5, 30]) {
    test(`${n} concurrent requests for a cold private page each get their own page, never a 500`, async () => {
      let renders = 0;
      const { url } = await serve(async (req, res) => {
        renders++;
        await sleep(30);
        res.writeHead(200, { 'cache-control': 'private, max-age=60', 'content-type': 'text/plain' });
        res.end(`page for ${String(req.headers['x-user'])}`);
      });
      const replies = await many(n, `${url}/account`, (i) => ({ 'x-user': `u${i}` }));
      replies.forEach((r, i) => {
        assert.equal(r.status, 200);
        assert.equal(r.body, `page for u${i}`, 'each client gets the page rendered for its own request');
      });
      assert.equal(renders, n, 'each request rendered its own page');
    });
  }

  test('concurrent requests for a cold page answered with Set-Cookie each get their own cookie', async () => {
    let renders = 0;
    const { url } = await serve(async (_req, res) => {
      const n = ++renders;
      await sleep(30);
      res.writeHead(200, { 'set-cookie': `sid=${n}`, 'cache-control': 'max-age=60' });
      res.end(`session ${n}`);
    });
    const replies = await many(5, `${url}/login`);
    const cookies = new Set(replies.map((r) => String(r.headers['set-cookie'])));
    for (const r of replies) assert.equal(r.status, 200);
    assert.equal(cookies.size, 5, 'no Set-Cookie was handed to a second client');
    assert.equal(renders, 5);
  });
});

describe("the origin's error reaches every waiter as the origin sent it", () => {
  for (const status of [503, 504]) {
    test(`${status} without freshness: every waiter gets ${status} and the origin's body, from one render`, async () => {
      let renders = 0;
      const { url } = await serve(async (_req, res) => {
        renders++;
        // Long enough that all six requests arrive while it renders, even on a busy machine.
        await sleep(400);
        res.writeHead(status, { 'content-type': 'text/plain' });
        res.end(`origin says ${status}`);
      });
      const replies = await many(6, `${url}/down`);
      for (const r of replies) {
        assert.equal(r.status, status, 'never a status the origin did not send');
        assert.equal(r.body, `origin says ${status}`);
      }
      assert.equal(renders, 1, 'the waiters shared the leader\'s answer');
    });
  }
});

describe('a render that stops', () => {
  test('waiters of a leader whose client leaves and whose handler stops get the page within ~1 s, not originTimeout', async () => {
    let renders = 0;
    const { url } = await serve(
      async (_req, res) => {
        const n = ++renders;
        await sleep(200);
        if (res.destroyed) return;
        res.writeHead(200, { 'cache-control': 'max-age=60', 'content-type': 'text/plain' });
        res.end(`render ${n}`);
      },
      { originTimeout: 30_000 },
    );
    const leader = new Promise<void>((resolve) => {
      const req = http.get(`${url}/left`, { agent: false }, () => undefined);
      req.on('error', () => resolve());
      setTimeout(() => (req.destroy(), resolve()), 50);
    });
    await sleep(10);
    const started = Date.now();
    const waiters = many(20, `${url}/left`);
    await leader;
    const replies = await waiters;
    const took = Date.now() - started;
    for (const r of replies) {
      assert.equal(r.status, 200);
      assert.equal(r.body, 'render 2', 'one waiter led a new render for the others');
    }
    assert.equal(renders, 2);
    assert.ok(took < 2_500, `waiters got the page after ${took} ms`);
  });

  test("a waiter whose own client left leads the next render: the render still ends and its waiters get it, not a 504", async () => {
    let renders = 0;
    const { url } = await serve(
      async (_req, res) => {
        const n = ++renders;
        if (n === 1) {
          // The first render stops when its client leaves: abandoned after a quiet second.
          await sleep(100);
          if (res.destroyed) return;
        }
        res.writeHead(200, { 'cache-control': 'max-age=60', 'content-type': 'text/plain' });
        // A slow stream that never looks at res.destroyed.
        for (const part of ['render ', String(n)]) {
          res.write(part);
          await sleep(50);
        }
        res.end();
      },
      { originTimeout: 400 },
    );
    const gone = (): Promise<void> =>
      new Promise((resolve) => {
        const req = http.get(`${url}/late`, { agent: false }, () => undefined);
        req.on('error', () => resolve());
        setTimeout(() => (req.destroy(), resolve()), 40);
      });
    // The leader and the first waiter both leave; the waiter is the one that leads render 2.
    const leader = gone();
    await sleep(10);
    const firstWaiter = gone();
    await sleep(10);
    const waiter = request(`${url}/late`);
    await Promise.all([leader, firstWaiter]);
    const reply = await waiter;
    assert.equal(reply.status, 200, 'never a 504 from a render whose client had already left');
    assert.equal(reply.body, 'render 2');
    assert.equal((await request(`${url}/late`)).body, 'render 2', 'and it was stored');
  });

  test('a render that sends its headers and 10 bytes then stalls: its client sees a cut response, waiters a 504, nothing stored', async () => {
    let renders = 0;
    const { url } = await serve(
      (_req, res) => {
        renders++;
        res.writeHead(200, { 'cache-control': 'max-age=60', 'content-length': '100' });
        res.write('0123456789');
        // ...and nothing more, ever.
      },
      { originTimeout: 300 },
    );
    const started = Date.now();
    const leader = fetchRaw(`${url}/stall`);
    await sleep(20);
    const waiters = many(5, `${url}/stall`);
    const cut = await leader;
    assert.equal(cut.complete, false, 'the client can tell the response was cut');
    assert.ok(cut.bytes < 100);
    for (const r of await waiters) assert.equal(r.status, 504);
    assert.ok(Date.now() - started < 3_000, 'bounded by originTimeout, not 30 s');
    const again = fetchRaw(`${url}/stall`);
    assert.equal((await again).complete, false);
    assert.equal(renders, 2, 'the cut response was not stored');
  });

  test('a 5 MB streaming miss whose leader aborts after 1 MB: waiters still get all 5 MB', async () => {
    const size = 5 * 1024 * 1024;
    let renders = 0;
    const { url } = await serve(
      (_req, res) => {
        renders++;
        let sent = 0;
        const source = new Readable({
          read() {
            if (sent >= size) return void this.push(null);
            const chunk = Buffer.alloc(64 * 1024, 97);
            sent += chunk.length;
            setTimeout(() => this.push(chunk), 1);
          },
        });
        res.writeHead(200, { 'cache-control': 'max-age=60', 'content-type': 'application/octet-stream' });
        // pipeline() destroys its source when the client goes.
        pipeline(source, res, () => undefined);
      },
      { maxEntrySize: 16 * 1024 * 1024, maxSize: 64 * 1024 * 1024 },
    );
    const leader = fetchRaw(`${url}/big`, { abortAfterBytes: 1024 * 1024 });
    await sleep(20);
    const waiters = Promise.all(Array.from({ length: 5 }, () => fetchRaw(`${url}/big`)));
    await leader;
    for (const w of await waiters) {
      assert.equal(w.status, 200);
      assert.equal(w.bytes, size);
      assert.equal(w.complete, true);
    }
    assert.ok(renders <= 2, `renders: ${renders}`);
  });
});

describe('invalidations win over renders already in flight', () => {
  test('a request sent after a PURGE was answered never gets the render begun before it', async () => {
    let version = 1;
    const { url } = await serve(async (_req, res) => {
      const v = version;
      await sleep(150);
      res.writeHead(200, { 'cache-control': 'max-age=60' });
      res.end(`v${v}`);
    });
    const first = request(`${url}/a`);
    await sleep(30);
    version = 2;
    const purged = await request(`${url}/a`, { method: 'PURGE' });
    assert.equal(purged.status, 200);
    const after = await request(`${url}/a`);
    assert.equal(after.body, 'v2', 'the request after the PURGE rendered after it');
    assert.equal((await first).body, 'v1');
    const later = await request(`${url}/a`);
    assert.equal(later.body, 'v2', 'the render begun before the PURGE was not stored as fresh');
  });

  test('a refetching flush during a background refresh renders after the flush', async () => {
    let version = 1;
    let renders = 0;
    const { url, cache } = await serve(
      async (_req, res) => {
        renders++;
        const v = version;
        await sleep(v === 2 ? 200 : 10);
        res.writeHead(200, { 'cache-control': 'max-age=0, stale-while-revalidate=60', etag: `"${v}"` });
        res.end(`v${v}`);
      },
      {},
    );
    assert.equal((await request(`${url}/r`)).body, 'v1');
    version = 2;
    // Stale: this serves v1 and starts a background refresh that renders v2 (slowly).
    await request(`${url}/r`);
    await sleep(30);
    version = 3;
    const result = await cache.invalidate('/r', { refetch: ['/r'] });
    const summary = await result.refetched;
    assert.equal(summary.ok, 1);
    const now = await request(`${url}/r`);
    assert.equal(now.body, 'v3', 'the refetch rendered after the flush, not joined the refresh begun before it');
    assert.ok(renders >= 3);
  });

  test('two refetching flushes back to back leave the newest version', async () => {
    let version = 1;
    const { url, cache } = await serve(async (_req, res) => {
      const v = version;
      await sleep(100);
      res.writeHead(200, { 'cache-control': 'max-age=60' });
      res.end(`v${v}`);
    });
    assert.equal((await request(`${url}/b`)).body, 'v1');
    version = 2;
    const one = await cache.invalidate('/b', { refetch: ['/b'] });
    await sleep(30);
    version = 3;
    const two = await cache.invalidate('/b', { refetch: ['/b'] });
    await Promise.all([one.refetched, two.refetched]);
    assert.equal((await request(`${url}/b`)).body, 'v3');
  });
});
