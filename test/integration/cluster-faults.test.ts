/**
 * Faults in a cluster: a node killed mid-test, a node that hangs, a node answering garbage, a
 * node with the wrong secret, unauthenticated callers. Every request still succeeds with the
 * right body, rendered locally; failures are counted and the breaker stops the cost.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { after, describe, test } from 'node:test';
import { request, sleep } from '../helpers/http.js';
import { HOST, PEER_PATH, SECRET, countingOrigin, kill, lateServer, startCluster, type Node } from '../helpers/cluster.js';
import { encodeEntry, type Entry, type PeerError } from '../../src/index.js';
import { SIGNATURE_HEADER, REPLY_SIGNATURE_HEADER, replyMac, signRequest } from '../../src/peers/auth.js';
import { testEntry } from '../helpers/entry.js';

const get = (base: string, path: string, headers: Record<string, string> = {}) => request(base + path, { headers: { host: HOST, ...headers } });
/** Generous bound for one request in a fault scenario: no speed claim, only "does not hang". */
const BOUND_MS = 2_000;

async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const start = performance.now();
  const value = await fn();
  return { value, ms: performance.now() - start };
}

function sampleEntry(body: string): Entry {
  return testEntry({ body: Buffer.from(body), host: HOST });
}

describe('faults', () => {
  test('a node killed mid-test: requests keep succeeding, its breaker opens, the cost stays bounded', async () => {
    const origin = countingOrigin();
    const cluster = await startCluster(3, origin, {
      peers: (_i, all) => ({ nodes: all, secret: SECRET, failureThreshold: 2, coolDown: 60_000 }),
    });
    after(() => cluster.close());
    const [a, b, c] = cluster.nodes as [Node, Node, Node];
    for (let i = 0; i < 5; i++) {
      await get(a.url, `/warm/${i}`);
      assert.equal((await get(c.url, `/warm/${i}`)).headers['x-cache'], 'PEER');
    }
    await c.kill();
    for (let i = 0; i < 20; i++) {
      const node = i % 2 === 0 ? a : b;
      const { value: r, ms } = await timed(() => get(node.url, `/after/${i}`));
      assert.equal(r.status, 200);
      assert.equal(r.body, `page /after/${i}`);
      assert.ok(ms < BOUND_MS, `request took ${ms} ms`);
    }
    for (const node of [a, b]) {
      const s = node.cache.stats();
      const dead = s.peers.find((p) => p.url === c.url)!;
      assert.equal(dead.state, 'open');
      assert.equal(s.peerErrors, 2); // two failures opened it; nothing was sent afterwards
    }
    // Pages cached on the live nodes are still shared between them.
    assert.equal((await get(b.url, '/after/0')).headers['x-cache'], 'PEER');
  });

  test('a node that hangs costs about queryTimeout per request, then nothing once its breaker is open', async () => {
    const sockets = new Set<net.Socket>();
    let connections = 0;
    const hung = net.createServer((socket) => {
      connections++;
      sockets.add(socket);
      socket.on('error', () => {});
      socket.resume(); // read the request, never answer
    });
    await new Promise<void>((resolve) => hung.listen(0, '127.0.0.1', resolve));
    const hungUrl = `http://127.0.0.1:${(hung.address() as AddressInfo).port}`;
    after(() => {
      for (const s of sockets) s.destroy();
      hung.close();
    });
    const origin = countingOrigin();
    const cluster = await startCluster(1, origin, {
      peers: (_i, all) => ({ nodes: all, secret: SECRET, queryTimeout: 50, failureThreshold: 3, coolDown: 300 }),
      extraNodes: [hungUrl],
    });
    after(() => cluster.close());
    const [a] = cluster.nodes as [Node];
    const errors: PeerError[] = [];
    a.cache.on('peer-error', (e) => errors.push(e));
    const times: number[] = [];
    for (let i = 0; i < 8; i++) {
      const { value: r, ms } = await timed(() => get(a.url, `/h/${i}`));
      assert.equal(r.body, `page /h/${i}`);
      assert.equal(r.headers['x-cache'], 'MISS');
      times.push(ms);
    }
    for (const ms of times) assert.ok(ms < BOUND_MS, `request took ${ms} ms`);
    let s = a.cache.stats();
    assert.equal(s.peerTimeouts, 3);
    assert.equal(s.peerLoads, 3);
    assert.equal(connections, 3);
    assert.equal(s.peers[0]!.state, 'open');
    assert.equal(errors.length, 3);
    assert.equal(errors[0]!.code, 'ERR_PEER_TIMEOUT');
    assert.equal(errors[0]!.peer, hungUrl);
    // After the cool-down one probe goes through; it times out too, and the breaker opens again.
    await sleep(350);
    assert.equal(a.cache.stats().peers[0]!.state, 'half-open');
    await get(a.url, '/h/probe');
    await get(a.url, '/h/after-probe');
    s = a.cache.stats();
    assert.equal(s.peerTimeouts, 4);
    assert.equal(connections, 4);
    assert.equal(s.peers[0]!.state, 'open');
    assert.equal(origin.total(), 10);
  });

  test('lookups queued behind maxConcurrent at queryTimeout are dropped unsent', async () => {
    const sockets = new Set<net.Socket>();
    const hungServers = await Promise.all(
      [0, 1].map(async () => {
        const server = net.createServer((socket) => {
          sockets.add(socket);
          socket.on('error', () => {});
          socket.resume();
        });
        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
        return server;
      }),
    );
    after(() => {
      for (const s of sockets) s.destroy();
      for (const server of hungServers) server.close();
    });
    const origin = countingOrigin();
    const cluster = await startCluster(1, origin, {
      peers: (_i, all) => ({ nodes: all, secret: SECRET, queryTimeout: 100, maxConcurrent: 1, failureThreshold: 100 }),
      extraNodes: hungServers.map((s) => `http://127.0.0.1:${(s.address() as AddressInfo).port}`),
    });
    after(() => cluster.close());
    const [a] = cluster.nodes as [Node];
    const { value: r, ms } = await timed(() => get(a.url, '/queued'));
    assert.equal(r.body, 'page /queued');
    assert.ok(ms < BOUND_MS, `request took ${ms} ms`);
    await sleep(50);
    const s = a.cache.stats();
    assert.equal(s.peerLoads, 1); // the second peer's lookup never left the queue
    assert.equal(s.peerTimeouts, 1);
    assert.equal(sockets.size, 1);
    assert.deepEqual(s.peers.map((p) => p.failures).sort(), [0, 1]);
    // Per peer: the one that timed out says so, with its last error.
    const timedOut = s.peers.find((p) => p.timeouts === 1);
    assert.ok(timedOut?.lastError !== undefined && /time/i.test(timedOut.lastError.message), JSON.stringify(s.peers));
    assert.deepEqual(s.peers.map((p) => p.timeouts).sort(), [0, 1]);
  });

  test('a judging hook that throws refuses the entry instead of stranding the request', async () => {
    const origin = countingOrigin();
    const cluster = await startCluster(2, origin);
    after(() => cluster.close());
    const [a, b] = cluster.nodes as [Node, Node];
    await get(a.url, '/throws');
    b.cache.engine.invalidation.isInvalidated = () => {
      throw new Error('hook bug');
    };
    const r = await get(b.url, '/throws');
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-cache'], 'MISS');
    assert.equal(origin.total(), 2);
  });

  test('a client that leaves during a slow peer lookup does not strand the requests queued behind it', async () => {
    const sockets = new Set<net.Socket>();
    const hung = net.createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => {});
      socket.resume();
    });
    await new Promise<void>((resolve) => hung.listen(0, '127.0.0.1', resolve));
    after(() => {
      for (const s of sockets) s.destroy();
      hung.close();
    });
    const origin = countingOrigin();
    const cluster = await startCluster(1, origin, {
      peers: (_i, all) => ({ nodes: all, secret: SECRET, queryTimeout: 200, failureThreshold: 100 }),
      extraNodes: [`http://127.0.0.1:${(hung.address() as AddressInfo).port}`],
    });
    after(() => cluster.close());
    const [a] = cluster.nodes as [Node];
    const leaver = http.get(`${a.url}/left`, { headers: { host: HOST }, agent: false });
    leaver.on('error', () => {});
    await sleep(30);
    const waiter = get(a.url, '/left'); // joins the leader's flight
    await sleep(30);
    leaver.destroy();
    const { value: r, ms } = await timed(() => waiter);
    assert.equal(r.status, 200);
    assert.equal(r.body, 'page /left');
    assert.ok(ms < BOUND_MS, `waiter took ${ms} ms`);
  });

  describe('a node answering garbage: a miss, counted, rendered locally, never served', () => {
    const cases: Array<{ name: string; answer: (req: http.IncomingMessage, res: http.ServerResponse) => void }> = [
      {
        name: 'random bytes, signed',
        answer: (req, res) => {
          const body = Buffer.from('this is not an entry at all');
          const sig = replyMac(SECRET, String(req.headers[SIGNATURE_HEADER]), 200).update(body).digest('base64url');
          res.writeHead(200, { 'content-type': 'application/octet-stream', [REPLY_SIGNATURE_HEADER]: sig });
          res.end(body);
        },
      },
      {
        name: 'a valid entry without a reply signature',
        answer: (_req, res) => {
          res.writeHead(200, { 'content-type': 'application/octet-stream' });
          res.end(encodeEntry(sampleEntry('poisoned')));
        },
      },
      {
        name: 'a valid entry signed with another secret',
        answer: (req, res) => {
          const body = encodeEntry(sampleEntry('poisoned'));
          const sig = replyMac('another-secret-0123456789', String(req.headers[SIGNATURE_HEADER]), 200).update(body).digest('base64url');
          res.writeHead(200, { [REPLY_SIGNATURE_HEADER]: sig });
          res.end(body);
        },
      },
      {
        name: 'a truncated entry',
        answer: (req, res) => {
          const body = encodeEntry(sampleEntry('poisoned'));
          const sig = replyMac(SECRET, String(req.headers[SIGNATURE_HEADER]), 200).update(body).digest('base64url');
          res.writeHead(200, { 'content-length': body.length, [REPLY_SIGNATURE_HEADER]: sig });
          res.write(body.subarray(0, 20));
          setTimeout(() => res.destroy(), 5);
        },
      },
      {
        name: 'an oversized reply',
        answer: (_req, res) => {
          res.writeHead(200, { 'content-length': 50 * 1024 * 1024 });
          res.write(Buffer.alloc(1024));
          setTimeout(() => res.destroy(), 5);
        },
      },
      {
        name: 'an oversized reply without content-length',
        answer: (_req, res) => {
          res.writeHead(200);
          const chunk = Buffer.alloc(64 * 1024);
          let sent = 0;
          const pump = (): void => {
            while (sent < 2 * 1024 * 1024 && !res.destroyed) {
              sent += chunk.length;
              if (!res.write(chunk)) return void res.once('drain', pump);
            }
            res.end();
          };
          pump();
        },
      },
      { name: 'a 500', answer: (_req, res) => void res.writeHead(500).end('oops') },
    ];
    for (const { name, answer } of cases) {
      test(name, async () => {
        const fake = await lateServer();
        let asked = 0;
        fake.bind((req, res) => {
          asked++;
          answer(req, res);
        });
        after(() => kill(fake.server));
        const origin = countingOrigin();
        const cluster = await startCluster(1, origin, {
          peers: (_i, all) => ({ nodes: all, secret: SECRET, maxEntrySize: 1024 * 1024, failureThreshold: 100 }),
          extraNodes: [fake.url],
        });
        after(() => cluster.close());
        const [a] = cluster.nodes as [Node];
        for (let i = 0; i < 2; i++) {
          const r = await get(a.url, `/g${i}`);
          assert.equal(r.status, 200);
          assert.equal(r.body, `page /g${i}`);
          assert.equal(r.headers['x-cache'], 'MISS');
        }
        const s = a.cache.stats();
        assert.equal(asked, 2);
        assert.equal(s.peerErrors, 2);
        assert.equal(s.peerHits, 0);
        assert.equal(origin.total(), 2);
      });
    }
  });

  test('wrong secret: 401 both ways, no entries change hands, the page renders locally', async () => {
    const origin = countingOrigin();
    const cluster = await startCluster(3, origin, {
      peers: (i, all) => ({ nodes: all, secret: i === 2 ? 'a-different-secret-0123456789' : SECRET, failureThreshold: 100 }),
    });
    after(() => cluster.close());
    const [a, b, d] = cluster.nodes as [Node, Node, Node];
    await get(a.url, '/s');
    const fromD = await get(d.url, '/s');
    assert.equal(fromD.headers['x-cache'], 'MISS');
    assert.equal(fromD.body, 'page /s');
    const sd = d.cache.stats();
    assert.equal(sd.peerHits, 0);
    assert.equal(sd.peerErrors, 2); // A and B both refused it
    // A good node asking D gets 401 from it (D cannot check its signature) and renders locally.
    await get(d.url, '/only-on-d');
    const fromB = await get(b.url, '/only-on-d');
    assert.equal(fromB.headers['x-cache'], 'MISS');
    assert.equal(b.cache.stats().peerErrors, 1);
    assert.equal(b.cache.stats().peerHits, 0);
    assert.equal(origin.total(), 4); // /s on A and D, /only-on-d on D and B
  });

  test('the endpoint refuses unauthenticated, forged, expired and malformed calls', async () => {
    const origin = countingOrigin();
    const cluster = await startCluster(1, origin);
    after(() => cluster.close());
    const [a] = cluster.nodes as [Node];
    await get(a.url, '/secret-page');
    const key = encodeURIComponent(`${HOST}/secret-page`);
    const target = `${PEER_PATH}/r?k=${key}`;
    const call = (t: string, headers: Record<string, string> = {}, method = 'GET') => request(a.url + t, { method, headers });

    const none = await call(target);
    assert.equal(none.status, 401);
    assert.ok(!none.body.includes('page'));
    const forged = await call(target, signRequest('wrong-secret-0123456789', 'GET', target));
    assert.equal(forged.status, 401);
    const tampered = await call(target, signRequest(SECRET, 'GET', `${PEER_PATH}/r?k=other`));
    assert.equal(tampered.status, 401);
    const expired = await call(target, signRequest(SECRET, 'GET', target, Date.now() - 60_000));
    assert.equal(expired.status, 401);
    const future = await call(target, signRequest(SECRET, 'GET', target, Date.now() + 60_000));
    assert.equal(future.status, 401);
    const malformed = `${PEER_PATH}/r?nokey=1`;
    assert.equal((await call(malformed, signRequest(SECRET, 'GET', malformed))).status, 400);
    const post = await call(target, signRequest(SECRET, 'POST', target), 'POST');
    assert.equal(post.status, 405);
    const unknownNs = `${PEER_PATH}/q?k=${key}`;
    assert.equal((await call(unknownNs, signRequest(SECRET, 'GET', unknownNs))).status, 404);
    const good = await call(target, signRequest(SECRET, 'GET', target));
    assert.equal(good.status, 200);
    assert.equal(good.headers['content-type'], 'application/octet-stream');
    assert.ok(good.raw.includes(Buffer.from('page /secret-page')));
    assert.equal(origin.total(), 1); // the endpoint never rendered
  });
});
