/**
 * One cache node as a Kubernetes pod runs it: the cluster's members are the ready pods of a
 * headless Service, found in DNS every 5 s, so scaling the Deployment from 3 to 12 pods needs no
 * reconfiguration and no restart. With REDIS_URL set, the shared Redis tier is added and the
 * members come from heartbeats in it instead. See docs/cluster.md, "Membership that finds itself".
 *
 *   POD_IP=10.0.0.5 SERVICE=web.shop.svc.cluster.local STRATACACHE_PEER_SECRET=... npx tsx examples/kubernetes.ts
 */
import http from 'node:http';
import { createCache, redisStore, type PeersDiscovery } from 'stratacache';

const port = Number(process.env.PORT ?? 3000);
const podIp = process.env.POD_IP ?? '127.0.0.1'; // the downward API: status.podIP
const service = process.env.SERVICE ?? 'web.shop.svc.cluster.local'; // the headless Service (clusterIP: None)
const secret = process.env.STRATACACHE_PEER_SECRET ?? 'kubernetes-example-secret-change-me';
const redisUrl = process.env.REDIS_URL;

function app(req: http.IncomingMessage, res: http.ServerResponse): void {
  res.setHeader('cache-control', 'public, max-age=60');
  res.end(`<h1>${req.url} rendered by ${podIp}</h1>`);
}

// DNS answers each ready pod's address; the port is this Deployment's container port.
const dns: PeersDiscovery = { dns: service, port, interval: 5_000 };
// With the Redis tier, each node announces itself every 2 s and counts as gone 6 s after its last heartbeat.
const heartbeats: PeersDiscovery = { redis: true, interval: 2_000, ttl: 6_000 };

const cache = createCache({
  key: { host: 'www.example.com' },
  stores: redisUrl === undefined ? [] : [await redisStore({ url: redisUrl })],
  // `self` is what the others find in DNS (or in Redis) for this pod: its IP and port.
  peers: { self: `http://${podIp}:${port}`, secret, strategy: 'owner', discover: redisUrl === undefined ? dns : heartbeats },
});
cache.on('membership', ({ joined, left, nodes }) => console.log(`members: ${nodes.length} (joined ${joined.join(' ') || '-'}, left ${left.join(' ') || '-'})`));

const server = http.createServer(cache.wrap(app)).listen(port, '0.0.0.0');
// Kubernetes sends SIGTERM before it removes the pod: close withdraws it from the heartbeats at once.
process.once('SIGTERM', () => server.close(() => void cache.close()));
