/**
 * A refetching flush whose owner peer hangs: the node waiting for the owner's copy stops waiting
 * as soon as the owner's breaker opens, and its clients are answered then, not after
 * PEER_REFETCH_WAIT. Real nodes on 127.0.0.1; the hung peer accepts connections, never answers.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, test } from 'node:test';
import { PEER_REFETCH_WAIT } from '../../src/invalidation/publications.js';
import { countingOrigin, HOST, SECRET, startCluster, type Node } from '../helpers/cluster.js';
import { request } from '../helpers/http.js';

const get = (base: string, path: string) => request(base + path, { headers: { host: HOST } });

test('a refetching flush whose owner hangs: clients wait only until its breaker opens', { timeout: 20_000 }, async () => {
  const sockets = new Set<import('node:net').Socket>();
  const hung = http.createServer(() => undefined);
  hung.on('connection', (s) => sockets.add(s));
  await new Promise<void>((r) => hung.listen(0, '127.0.0.1', r));
  const hungUrl = `http://127.0.0.1:${(hung.address() as AddressInfo).port}`;
  after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => hung.close(r));
  });
  const origin = countingOrigin();
  const cluster = await startCluster(2, origin, {
    extraNodes: [hungUrl],
    peers: (_i, urls) => ({ nodes: urls, secret: SECRET, queryTimeout: 100, failureThreshold: 2, coolDown: 60_000 }),
  });
  after(() => cluster.close());
  const [a] = cluster.nodes as [Node, Node];
  // A page the hung node owns; A never had it.
  const page = Array.from({ length: 60 }, (_, i) => `/owned/p${i}.html`).find((p) => a.cache.engine.peers!.liveOwner(`${HOST}${p}`) === hungUrl)!;
  assert.ok(page, 'some page is owned by the hung node');
  const flushed = await request(`${a.url}/dispatcher/invalidate.cache`, {
    method: 'POST',
    headers: { host: HOST, 'cq-action': 'Activate', 'cq-handle': '/owned', 'content-type': 'text/plain' },
    body: page,
  });
  assert.equal(flushed.status, 200);
  const started = Date.now();
  const reply = await get(a.url, page);
  const took = Date.now() - started;
  assert.equal(reply.status, 200);
  assert.equal(reply.body, `page ${page}`);
  assert.ok(took < PEER_REFETCH_WAIT / 2, `the client waited ${took} ms`);
});
