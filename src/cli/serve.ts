/**
 * `stratacache serve`: the cache as a standalone caching reverse proxy in front of an upstream,
 * from a config file and flags. Says what it runs in one startup line, and on SIGTERM/SIGINT stops
 * accepting, lets in-flight requests finish (bounded by the drain timeout), closes the cache
 * (pending disk writes included) and exits 0.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { createCache, type StrataCache } from '../cache.js';
import { resolveOptions } from '../options/resolve.js';
import { DiskStore } from '../stores/disk.js';
import { redisStore, type RedisStoreOptions } from '../stores/redis.js';
import { INSTALL_HINT } from '../stores/redis-client.js';
import type { CacheStore } from '../stores/store.js';
import { createProxy } from '../proxy/upstream.js';
import { withAccessLog } from './access-log.js';
import { adminHandler, parseAdmin, parseAdminOnMain, unguardedWarning, withoutAdminRoutes, type AdminAddress } from './admin.js';
import { UpstreamErrorLog } from './error-log.js';
import { buildServePlan, findConfigFile, loadConfigFile, type ServePlan } from './config.js';
import { parseFlags, UsageError } from './units.js';
import type { Io } from './io.js';

export const SERVE_HELP = `usage: stratacache serve --upstream URL [--port N] [options]

Runs the cache in front of an upstream. Options come from a config file (stratacache.config.mjs,
.js or .json in the working directory, or --config FILE: every library option, plus upstream,
port, host, proxy, disk, redis, accessLog, drainTimeout, secretEnv) and from these flags, which win.
Sizes and durations need a unit, in flags and files alike: 512kb, 64mb, 1gb; 500ms, 10s, 5m, 1h, 1d
(a bare number is refused, but 0).

  --upstream URL              where misses go, e.g. http://127.0.0.1:8080 (required)
  --port N                    listen port (default 3000; 0 picks a free one)
  --host ADDR                 listen address (default 127.0.0.1)
  --config FILE               config file (default: the first stratacache.config.* in the cwd)
  --max-size SIZE             memory budget of the response cache (default 64mb)
  --max-entry-size SIZE       largest body stored (default 8mb)
  --default-ttl DURATION      freshness when the upstream sends none (default 0: not stored)
  --heuristic-freshness F     with only Last-Modified, fresh for this fraction of its age (0.1 usual)
  --max-ttl DURATION          cap on any freshness (default 1d)
  --grace DURATION            serve invalidated pages this long while they refresh (default 10s)
  --stale-if-error DURATION   serve stale this long when the upstream fails (default 1d)
  --stale-while-revalidate D  serve stale this long while refreshing (default 0)
  --stat-level N              how far up the path an invalidation reaches (default 0)
  --ignore-params A,B         query parameters left out of the key (globs: utm_*)
  --key-host HOST|false       key every request under this host (default: the Host header)
  --targeted-cache-control L  targeted cache-control fields obeyed (RFC 9213), comma-separated
                              (default cdn-cache-control; '' obeys Cache-Control only)
  --disk DIR                  add a disk tier in DIR that survives restarts
  --disk-size SIZE            its budget (default 1gb)
  --redis URL                 add the tier shared by every node on this Redis or Valkey:
                              redis://[user:password@]host:port[/db] (needs the ioredis package)
  --redis-cluster URL,URL,... the same on a Redis (or Valkey) Cluster, from some of its nodes:
                              redis://[user:password@]host:port (keys spread over its slots)
  --compress                  compress text responses for clients that accept it (br, gzip; zstd
                              where Node has it), each coding stored once
  --preserve-host             send the client's Host upstream (default: the upstream's host)
  --upstream-timeout DURATION wait this long for upstream headers, then 504 / stale (default 30s)
  --max-sockets N             keep-alive connections to the upstream at most (default 64)
  --peers URL,URL,...         cluster nodes (this one may be listed too)
  --self URL                  this node's URL as the peers reach it
  --strategy NAME             all: ask every peer; owner: only the key's owner; owner-fetch: the
                              owner, which renders the page once for everyone (default all)
  --discover-dns NAME         find the nodes in DNS instead of --peers: NAME's A/AAAA records with
                              --discover-port N, or its SRV records (a Kubernetes headless service)
  --discover-servers A,B      DNS servers to ask (IP[:port]; default the system's)
  --discover-redis            find the nodes through heartbeats in the --redis tier
  --discover-interval D       resolve DNS / heartbeat this often (default 5s / 2s)
  --discover-ttl DURATION     a node not heard from this long is gone (--discover-redis; default 6s)
  --secret-env NAME           environment variable holding the peer secret (default STRATACACHE_PEER_SECRET)
  --flush-token TOKEN         bearer token for flush, PURGE and stats (or STRATACACHE_FLUSH_TOKEN)
  --flush-allow CIDR,...      clients allowed to flush (default loopback)
  --access-log [clf|json]     one line per request on stdout
  --drain-timeout DURATION    on SIGTERM, wait this long for in-flight requests (default 10s)
  --admin [HOST:]PORT         serve /metrics (Prometheus), the operator console (/console/) and the
                              admin routes (flush endpoint, PURGE, /_stratacache/stats) there
  --admin-on-main             also serve the admin routes on --port (config: adminOnMain: true);
                              behind a proxy they then need --flush-token
  -h, --help                  this text

Environment: STRATACACHE_PEER_SECRET (peer secret), DEBUG=stratacache:* (diagnostics).`;

const FLAGS = {
  upstream: { type: 'string' },
  port: { type: 'string' },
  host: { type: 'string' },
  config: { type: 'string' },
  'max-size': { type: 'string' },
  'max-entry-size': { type: 'string' },
  'default-ttl': { type: 'string' },
  'heuristic-freshness': { type: 'string' },
  'max-ttl': { type: 'string' },
  grace: { type: 'string' },
  'stale-if-error': { type: 'string' },
  'stale-while-revalidate': { type: 'string' },
  'stat-level': { type: 'string' },
  'ignore-params': { type: 'string' },
  'key-host': { type: 'string' },
  'targeted-cache-control': { type: 'string' },
  disk: { type: 'string' },
  redis: { type: 'string' },
  'redis-cluster': { type: 'string' },
  compress: { type: 'boolean' },
  'disk-size': { type: 'string' },
  'preserve-host': { type: 'boolean' },
  'upstream-timeout': { type: 'string' },
  'max-sockets': { type: 'string' },
  peers: { type: 'string' },
  self: { type: 'string' },
  strategy: { type: 'string' },
  'discover-dns': { type: 'string' },
  'discover-port': { type: 'string' },
  'discover-servers': { type: 'string' },
  'discover-redis': { type: 'boolean' },
  'discover-interval': { type: 'string' },
  'discover-ttl': { type: 'string' },
  'secret-env': { type: 'string' },
  'flush-token': { type: 'string' },
  'flush-allow': { type: 'string' },
  'access-log': { type: 'string' },
  'drain-timeout': { type: 'string' },
  admin: { type: 'string' },
  'admin-on-main': { type: 'boolean' },
} as const;

/** Parses `serve` arguments and the config file into a plan. Exported for tests. */
export async function parseServe(argv: readonly string[], env: NodeJS.ProcessEnv, cwd: string): Promise<(ServePlan & { admin?: AdminAddress; adminOnMain: boolean }) | 'help'> {
  // `--access-log` alone means the common log format.
  const args = argv.flatMap((a, i) => (a === '--access-log' && (argv[i + 1] === undefined || argv[i + 1]!.startsWith('-')) ? ['--access-log=clf'] : [a]));
  const values: Record<string, string | boolean | undefined> = parseFlags(args, FLAGS).values;
  if (values.help === true) return 'help';
  if (values['flush-token'] === undefined && env.STRATACACHE_FLUSH_TOKEN !== undefined) values['flush-token'] = env.STRATACACHE_FLUSH_TOKEN;
  const configFile = findConfigFile(values.config as string | undefined, cwd);
  const file = configFile === undefined ? {} : await loadConfigFile(configFile);
  const admin = typeof values.admin === 'string' ? parseAdmin(values.admin) : undefined;
  const adminOnMain = parseAdminOnMain(values['admin-on-main'], file.adminOnMain);
  delete values.admin;
  delete values['admin-on-main'];
  const plan = { ...buildServePlan(file, values, { configFile, env }), adminOnMain };
  return admin === undefined ? plan : { ...plan, admin };
}

/** A URL as a log may show it: without its password. */
function redactUrl(url: string): string {
  const u = new URL(url);
  if (u.password !== '') u.password = '***';
  return u.href.replace(/\/$/, '');
}

/** What the startup line says about the tiers and peers. */
function describe(plan: ServePlan): string {
  const options = resolveOptions(plan.cache);
  const mb = (n: number): string => (n >= 1024 ** 3 ? `${+(n / 1024 ** 3).toFixed(1)} GiB` : `${+(n / 1024 ** 2).toFixed(1)} MiB`);
  const tiers = [`memory ${mb(options.maxSize)}`];
  if (plan.disk !== undefined) tiers.push(`disk ${plan.disk.dir} ${mb(plan.disk.maxSize)}`);
  if (plan.redis?.url !== undefined) tiers.push(`redis ${redactUrl(plan.redis.url)}`);
  if (plan.redis?.cluster !== undefined) tiers.push(`redis cluster ${plan.redis.cluster.map(redactUrl).join(' ')}`);
  const peers = options.peers;
  const found = peers.discover === undefined ? undefined : peers.discover.kind === 'dns' ? `discovered in DNS ${peers.discover.dns}` : 'discovered by Redis heartbeats';
  const nodes = found ?? (typeof peers.nodes === 'function' ? 'discovered' : peers.nodes.filter((n) => n !== peers.self).join(', '));
  const peerText = peers.secret === undefined || nodes === '' ? 'peers: none' : `peers: ${nodes} (self ${peers.self ?? '?'}, ${peers.strategy})`;
  const compress = options.compress === undefined ? '' : `; compress ${options.compress.encodings.join(', ')}`;
  return `tiers: ${tiers.join(', ')}; ${peerText}${compress}`;
}

/** The Redis tier; a missing ioredis is one line saying how to install it. */
async function redisTier(options: RedisStoreOptions): Promise<CacheStore> {
  try {
    return await redisStore(options);
  } catch (error) {
    if ((error as Error).message === INSTALL_HINT) throw new UsageError(`${options.cluster === undefined ? '--redis' : '--redis-cluster'} needs the ioredis package: run \`npm install ioredis\` next to stratacache`);
    if (error instanceof TypeError || error instanceof RangeError) throw new UsageError(`redis: ${error.message}`);
    throw error;
  }
}

/** Runs `serve`; resolves with the exit status once the server has stopped. */
export async function runServe(argv: readonly string[], io: Io): Promise<number> {
  const plan = await parseServe(argv, io.env, io.cwd);
  if (plan === 'help') {
    io.out(SERVE_HELP);
    return 0;
  }
  let cache: StrataCache;
  let proxy: ReturnType<typeof createProxy>;
  // Upstream failures on stderr, whatever DEBUG says (one line per cause a minute).
  const errorLog = new UpstreamErrorLog((line) => io.err(line));
  try {
    // Local tiers before the shared one: memory (built in), disk, then Redis.
    const stores: CacheStore[] = plan.disk === undefined ? [] : [new DiskStore({ dir: plan.disk.dir, maxSize: plan.disk.maxSize })];
    if (plan.redis !== undefined) stores.push(await redisTier(plan.redis));
    cache = createCache({ ...plan.cache, ...(stores.length > 0 ? { stores: [...(plan.cache.stores ?? []), ...stores] } : {}) });
    proxy = createProxy({ upstream: plan.upstream, ...plan.proxy, onError: (failure, req) => errorLog.report(failure, req) });
  } catch (error) {
    // Options the plan could not check alone (the disk tier's, the proxy's): still one line.
    if (error instanceof TypeError || error instanceof RangeError) throw new UsageError(error.message);
    throw error;
  }

  // Requests in flight, so that a drain knows when it is done.
  const inflight = new Set<ServerResponse>();
  let draining = false;
  const tracked = (req: IncomingMessage, res: ServerResponse): void => {
    inflight.add(res);
    // Once draining, every response closes its connection so the process can end.
    if (draining) res.shouldKeepAlive = false;
    res.once('close', () => {
      inflight.delete(res);
      if (draining) server.closeIdleConnections();
      if (draining && inflight.size === 0) drained();
    });
    handler(req, res);
  };
  const flushOptions = resolveOptions(plan.cache).flush;
  const wrapped = plan.adminOnMain ? cache.wrap(proxy) : withoutAdminRoutes(cache.wrap(proxy), flushOptions?.path);
  const handler = plan.accessLog === undefined ? wrapped : withAccessLog(wrapped, plan.accessLog, (line) => io.out(line), (req) => errorLog.causeOf(req));
  const server = http.createServer(tracked);

  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      void cache.close();
      if (error.code === 'EADDRINUSE') reject(new UsageError(`port ${plan.port} on ${plan.host} is already in use (EADDRINUSE): stop the other server or pick another --port`));
      else if (error.code === 'EACCES') reject(new UsageError(`not allowed to listen on port ${plan.port} on ${plan.host} (EACCES): use a port above 1023`));
      else if (error.code === 'EADDRNOTAVAIL' || error.code === 'ENOTFOUND') reject(new UsageError(`cannot listen on ${plan.host}: no such local address (${error.code})`));
      else reject(error);
    });
    server.listen(plan.port, plan.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : plan.port;
  const shownHost = plan.host.includes(':') ? `[${plan.host}]` : plan.host;
  const admin = plan.admin === undefined ? undefined : http.createServer(adminHandler(cache));
  let adminUrl: string | undefined;
  const adminListeners = plan.adminOnMain ? [{ url: `http://${shownHost}:${port}/`, host: plan.host }] : [];
  if (admin !== undefined && plan.admin !== undefined) {
    const at = plan.admin;
    await new Promise<void>((resolve, reject) => {
      admin.once('error', (error: NodeJS.ErrnoException) => {
        server.close();
        void cache.close();
        reject(new UsageError(`cannot serve --admin on ${at.host}:${at.port} (${error.code ?? error.message})`));
      });
      admin.listen(at.port, at.host, () => resolve());
    });
    const a = admin.address();
    adminUrl = `http://${at.host.includes(':') ? `[${at.host}]` : at.host}:${typeof a === 'object' && a !== null ? a.port : at.port}`;
    adminListeners.push({ url: `${adminUrl}/`, host: at.host });
  }
  // One startup line says everything that runs: address, upstream, every tier, peers, admin, config.
  const adminText = adminUrl === undefined ? 'admin: none (--admin to serve metrics and the console)' : `admin ${adminUrl}/`;
  io.out(`stratacache listening on http://${shownHost}:${port}/ -> ${plan.upstream}; ${describe(plan)}; ${adminText}${plan.configFile !== undefined ? `; config ${plan.configFile}` : ''}`);
  if (adminUrl !== undefined) io.out(`stratacache admin on ${adminUrl}/ : metrics ${adminUrl}/metrics, console ${adminUrl}/console/`);
  const warning = flushOptions === undefined ? undefined : unguardedWarning(flushOptions.token, adminListeners);
  if (warning !== undefined) io.err(warning);

  let drained: () => void = () => {};
  const stopped = new Promise<void>((resolve) => (drained = resolve));
  const stop = (signal: string): void => {
    if (draining) {
      io.err(`stratacache: ${signal} again: stopping now`);
      server.closeAllConnections();
      drained();
      return;
    }
    draining = true;
    admin?.closeAllConnections();
    admin?.close();
    io.err(`stratacache: ${signal}: no new connections; waiting for ${inflight.size} in-flight request(s), up to ${plan.drainTimeout} ms`);
    server.close();
    server.closeIdleConnections();
    for (const res of inflight) if (!res.headersSent) res.shouldKeepAlive = false;
    if (inflight.size === 0) drained();
    setTimeout(() => {
      if (inflight.size > 0) io.err(`stratacache: drain timeout: closing ${inflight.size} unfinished request(s)`);
      server.closeAllConnections();
      drained();
    }, plan.drainTimeout).unref();
  };
  io.onSignal(stop);
  await stopped;
  server.closeAllConnections();
  // Pending disk writes and background work finish here (bounded: a stuck refetch cannot keep the process).
  await Promise.race([cache.close(), new Promise((r) => setTimeout(r, Math.max(1_000, plan.drainTimeout)).unref())]);
  io.err('stratacache: stopped');
  return 0;
}
