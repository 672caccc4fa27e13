/**
 * A process for test/unit/unheard.test.ts: a cache whose handler throws, with no `error` listener;
 * three requests, then it prints the statuses and exits.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createCache } from '../../src/index.js';

const cache = createCache();
const server = http.createServer(
  cache.wrap((req) => {
    throw new Error(`render failed: no template for ${req.url}`);
  }),
);
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const { port } = server.address() as AddressInfo;
const statuses: number[] = [];
for (let i = 0; i < 3; i++) {
  const res = await fetch(`http://127.0.0.1:${port}/x`);
  await res.arrayBuffer();
  statuses.push(res.status);
}
console.log(`statuses: ${statuses.join(',')}`);
server.closeAllConnections();
server.close();
await cache.close();
