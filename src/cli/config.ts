/**
 * `stratacache serve` configuration: a config file (`stratacache.config.json`, `.mjs` or `.js`,
 * found in the working directory or named by `--config`) overlaid with flags, validated once.
 * The file is flat: the serve fields below, and every other field is a {@link CacheOptions}
 * option, so every library option is reachable (functions too, from a `.mjs`/`.js` file).
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { CacheOptions } from '../options/types.js';
import { resolveOptions } from '../options/resolve.js';
import type { ProxyOptions } from '../proxy/upstream.js';
import type { RedisStoreOptions } from '../stores/redis.js';
import { convertUnits, parseDuration, parseInteger, parseSize, show, UsageError } from './units.js';

/** Config file names looked for in the working directory, in this order. */
export const CONFIG_FILES = ['stratacache.config.mjs', 'stratacache.config.js', 'stratacache.config.json'] as const;

/** Fields of a config file that belong to the server, not to the cache. */
const SERVE_FIELDS = new Set(['upstream', 'port', 'host', 'proxy', 'disk', 'redis', 'accessLog', 'drainTimeout', 'secretEnv', 'adminOnMain']);

/** Everything `serve` needs, validated. */
export interface ServePlan {
  upstream: string;
  port: number;
  host: string;
  proxy: Omit<ProxyOptions, 'upstream'>;
  cache: CacheOptions;
  disk: { dir: string; maxSize: number } | undefined;
  /**
   * The shared Redis tier's options, `url` or `cluster` set: from `--redis URL`, `--redis-cluster
   * URL,URL,...` or the file's `redis` (a URL, or an object of Redis store options).
   */
  redis: (RedisStoreOptions & ({ url: string; cluster?: undefined } | { cluster: string[]; url?: undefined })) | undefined;
  accessLog: 'clf' | 'json' | undefined;
  /** How long in ms in-flight requests may take to finish after SIGTERM. */
  drainTimeout: number;
  /** The config file read, if any. */
  configFile: string | undefined;
}

/** The serve flags as parsed by `node:util` parseArgs (strings and booleans). */
export type ServeFlags = Record<string, string | boolean | undefined>;

/** Reads a config file: JSON, or an ES module whose default export is an object (or a function returning one). */
export async function loadConfigFile(file: string): Promise<Record<string, unknown>> {
  const name = basename(file);
  if (!existsSync(file)) throw new UsageError(`${name}: no such config file (${file})`);
  let data: unknown;
  if (file.endsWith('.json')) {
    try {
      data = JSON.parse(readFileSync(file, 'utf8'));
    } catch (error) {
      throw new UsageError(`${name}: not valid JSON: ${(error as Error).message}`);
    }
  } else {
    try {
      const mod = (await import(pathToFileURL(file).href)) as { default?: unknown };
      data = typeof mod.default === 'function' ? await (mod.default as () => unknown)() : mod.default;
    } catch (error) {
      throw new UsageError(`${name}: could not load: ${String((error as Error).message ?? error).split('\n')[0]}`);
    }
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) throw new UsageError(`${name}: expected an object (the default export of a module), got ${show(data)}`);
  return data as Record<string, unknown>;
}

/** The config file to read: the one named, or the first of {@link CONFIG_FILES} in `cwd`. */
export function findConfigFile(named: string | undefined, cwd: string): string | undefined {
  if (named !== undefined) return resolve(cwd, named);
  return CONFIG_FILES.map((f) => resolve(cwd, f)).find((f) => existsSync(f));
}

const str = (v: string | boolean | undefined): string | undefined => (typeof v === 'string' ? v : undefined);
const list = (v: string | undefined): string[] | undefined => v?.split(',').map((s) => s.trim()).filter(Boolean);

/** Flags onto cache options (flags win over the file). */
function cacheFlags(flags: ServeFlags, into: Record<string, unknown>): void {
  const set = (name: string, option: string, parse: (field: string, v: string) => unknown): void => {
    const v = str(flags[name]);
    if (v !== undefined) into[option] = parse(`--${name}`, v);
  };
  set('max-size', 'maxSize', parseSize);
  set('max-entry-size', 'maxEntrySize', parseSize);
  set('default-ttl', 'defaultTtl', parseDuration);
  set('max-ttl', 'maxTtl', parseDuration);
  set('grace', 'gracePeriod', parseDuration);
  set('stale-if-error', 'staleIfError', parseDuration);
  set('stale-while-revalidate', 'staleWhileRevalidate', parseDuration);
  set('stat-level', 'statLevel', (f, v) => parseInteger(f, v, 0, 64));
  set('ignore-params', 'ignoreUrlParams', (_f, v) => list(v));
  set('targeted-cache-control', 'targetedCacheControl', (_f, v) => list(v) ?? []);
  set('heuristic-freshness', 'heuristicFreshness', (f, v) => {
    const n = Number(v);
    if (v.trim() === '' || !(n >= 0 && n <= 1)) throw new UsageError(`expected ${f} to be a fraction from 0 to 1, got '${v}'`);
    return n;
  });
  // `--compress` turns on the default codings unless the file configured compression already.
  if (flags.compress === true && (into.compress === undefined || into.compress === false)) into.compress = true;
  const keyHost = str(flags['key-host']);
  if (keyHost !== undefined) into.key = { ...(into.key as object | undefined), host: keyHost === 'false' ? false : keyHost };
  const token = str(flags['flush-token']);
  const allow = list(str(flags['flush-allow']));
  if (token !== undefined || allow !== undefined) {
    into.flush = { ...(into.flush as object | undefined), ...(token !== undefined ? { token } : {}), ...(allow !== undefined ? { allowedClients: allow } : {}) };
  }
}

/** Peers from flags and the secret from the environment (never from a flag: it would show in `ps`). */
function peerFlags(flags: ServeFlags, file: Record<string, unknown>, into: Record<string, unknown>, env: NodeJS.ProcessEnv): void {
  const nodes = list(str(flags.peers));
  const self = str(flags.self);
  const peers = { ...(into.peers as Record<string, unknown> | undefined) };
  if (nodes !== undefined) peers.nodes = nodes;
  if (self !== undefined) peers.self = self;
  const secretEnv = str(flags['secret-env']) ?? (typeof file.secretEnv === 'string' ? file.secretEnv : 'STRATACACHE_PEER_SECRET');
  const strategy = str(flags.strategy);
  if (strategy !== undefined) peers.strategy = strategy;
  const discover = discoverFlags(flags, peers.discover);
  if (discover !== undefined) peers.discover = discover;
  if (Object.keys(peers).length === 0) return;
  if (peers.secret === undefined && env[secretEnv] !== undefined) peers.secret = env[secretEnv];
  const hasNodes = typeof peers.nodes === 'function' || (Array.isArray(peers.nodes) && peers.nodes.length > 0) || peers.discover !== undefined;
  if (hasNodes && peers.secret === undefined) throw new UsageError(`peers need a shared secret: set the environment variable ${secretEnv}`);
  into.peers = peers;
}

/**
 * `peers.discover` from the `--discover-*` flags over the file's: `--discover-dns NAME` (with
 * `--discover-port`, `--discover-servers`) or `--discover-redis` (with `--discover-ttl`), and
 * `--discover-interval` for either. Undefined when no such flag is given.
 */
function discoverFlags(flags: ServeFlags, file: unknown): Record<string, unknown> | undefined {
  const dns = str(flags['discover-dns']);
  const redis = flags['discover-redis'] === true;
  const port = str(flags['discover-port']);
  const servers = list(str(flags['discover-servers']));
  const interval = str(flags['discover-interval']);
  const ttl = str(flags['discover-ttl']);
  if (dns === undefined && !redis && port === undefined && servers === undefined && interval === undefined && ttl === undefined) return undefined;
  if (dns !== undefined && redis) throw new UsageError('give one of --discover-dns and --discover-redis');
  const base = (file !== null && typeof file === 'object' ? file : {}) as Record<string, unknown>;
  const kind = dns !== undefined ? 'dns' : redis ? 'redis' : 'dns' in base ? 'dns' : 'redis' in base ? 'redis' : undefined;
  if (kind === undefined) throw new UsageError('--discover-port, --discover-servers, --discover-interval and --discover-ttl need --discover-dns NAME or --discover-redis');
  // A flag naming the other kind replaces the file's discovery; the same kind is refined.
  const out: Record<string, unknown> = kind in base ? { ...base } : {};
  if (kind === 'dns') {
    if (ttl !== undefined) throw new UsageError('--discover-ttl is for --discover-redis (DNS answers have no heartbeats)');
    if (dns !== undefined) out.dns = dns;
    if (port !== undefined) out.port = parseInteger('--discover-port', port, 1, 65535);
    if (servers !== undefined) out.servers = servers;
  } else {
    if (port !== undefined || servers !== undefined) throw new UsageError('--discover-port and --discover-servers are for --discover-dns');
    out.redis = true;
    if (ttl !== undefined) out.ttl = parseDuration('--discover-ttl', ttl);
  }
  if (interval !== undefined) out.interval = parseDuration('--discover-interval', interval);
  return out;
}

/**
 * Builds the serve plan from a config file's contents (may be empty) and flags.
 * @throws UsageError naming the field (`--port`, `config.maxSize`) and the bad value.
 */
export function buildServePlan(file: Record<string, unknown>, flags: ServeFlags, context: { configFile?: string | undefined; env?: NodeJS.ProcessEnv } = {}): ServePlan {
  const source = context.configFile === undefined ? 'config' : basename(context.configFile);
  try {
    return plan(file, flags, context.env ?? process.env, context.configFile);
  } catch (error) {
    // A mistake in the file names the file too.
    if (error instanceof UsageError && context.configFile !== undefined && / config\./.test(error.message)) throw new UsageError(`${source}: ${error.message}`);
    if (error instanceof TypeError || error instanceof RangeError) throw new UsageError(context.configFile === undefined ? error.message : `${source}: ${error.message}`);
    throw error;
  }
}

function plan(file: Record<string, unknown>, flags: ServeFlags, env: NodeJS.ProcessEnv, configFile: string | undefined): ServePlan {
  const converted = convertUnits(file, 'config');
  const cache: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(converted)) if (!SERVE_FIELDS.has(name)) cache[name] = value;
  // In front of an upstream the cache stores only what the upstream makes fresh: a default TTL
  // suits a handler the operator wrote, not an arbitrary origin. The file or a flag may say otherwise.
  if (cache.defaultTtl === undefined) cache.defaultTtl = 0;
  // A reverse proxy is the CDN-like cache RFC 9213 addresses: it obeys CDN-Cache-Control by default.
  if (cache.targetedCacheControl === undefined) cache.targetedCacheControl = ['cdn-cache-control'];
  cacheFlags(flags, cache);
  peerFlags(flags, converted, cache, env);

  const upstream = str(flags.upstream) ?? converted.upstream;
  if (upstream === undefined) throw new UsageError('--upstream is required (or "upstream" in a config file)');
  if (typeof upstream !== 'string' || !/^https?:\/\/[^/]/.test(upstream)) throw new UsageError(`expected upstream to be an http(s) URL, got ${show(upstream)}`);
  const port = parseInteger(flags.port !== undefined ? '--port' : 'config.port', flags.port ?? converted.port ?? 3000, 0, 65535);
  const host = str(flags.host) ?? converted.host ?? '127.0.0.1';
  if (typeof host !== 'string' || host === '') throw new UsageError(`expected config.host to be an address, got ${show(host)}`);

  const fileProxy = converted.proxy ?? {};
  if (typeof fileProxy !== 'object' || fileProxy === null || Array.isArray(fileProxy)) throw new UsageError(`expected config.proxy to be an object, got ${show(fileProxy)}`);
  const proxy: ServePlan['proxy'] = { ...(fileProxy as ServePlan['proxy']) };
  if (flags['preserve-host'] === true) proxy.preserveHost = true;
  const upstreamTimeout = str(flags['upstream-timeout']);
  if (upstreamTimeout !== undefined) proxy.timeout = parseDuration('--upstream-timeout', upstreamTimeout);
  const maxSockets = str(flags['max-sockets']);
  if (maxSockets !== undefined) proxy.maxSockets = parseInteger('--max-sockets', maxSockets, 1);

  let disk: ServePlan['disk'];
  const fileDisk = converted.disk as { dir?: unknown; maxSize?: unknown } | undefined;
  const diskDir = str(flags.disk) ?? fileDisk?.dir;
  if (diskDir !== undefined) {
    if (typeof diskDir !== 'string' || diskDir === '') throw new UsageError(`expected config.disk.dir to be a directory, got ${show(diskDir)}`);
    // The file's value was converted (and checked) by convertUnits.
    const size = str(flags['disk-size']) !== undefined ? parseSize('--disk-size', flags['disk-size']) : ((fileDisk?.maxSize as number | undefined) ?? 1024 ** 3);
    disk = { dir: diskDir, maxSize: size };
  }

  const redis = redisPlan(str(flags.redis), str(flags['redis-cluster']), converted.redis);
  const discover = (cache.peers as { discover?: object } | undefined)?.discover;
  if (discover !== undefined && 'redis' in discover && redis === undefined) throw new UsageError('--discover-redis (peers.discover.redis) needs the Redis tier: --redis URL');

  const accessLogRaw = flags['access-log'] ?? converted.accessLog;
  let accessLog: ServePlan['accessLog'];
  if (accessLogRaw === true || accessLogRaw === 'clf') accessLog = 'clf';
  else if (accessLogRaw === 'json') accessLog = 'json';
  else if (accessLogRaw !== undefined && accessLogRaw !== false) throw new UsageError(`expected accessLog to be 'clf', 'json' or false, got ${show(accessLogRaw)}`);
  const drainTimeout = str(flags['drain-timeout']) !== undefined ? parseDuration('--drain-timeout', flags['drain-timeout']) : ((converted.drainTimeout as number | undefined) ?? 10_000);

  // Validate the cache options now, so a mistake is one line at startup, naming the field.
  resolveOptions(cache as CacheOptions);
  return { upstream, port, host, proxy, cache: cache as CacheOptions, disk, redis, accessLog, drainTimeout, configFile };
}

const isRedisUrl = (url: unknown): url is string => typeof url === 'string' && /^rediss?:\/\/[^/]/.test(url) && URL.canParse(url);

/**
 * The Redis tier from `--redis URL` or `--redis-cluster URL,URL,...` (either wins over the file's
 * server) and the file's `redis`: a URL, or an object of redisStore options (`url` or `cluster`).
 */
function redisPlan(flag: string | undefined, clusterFlag: string | undefined, file: unknown): ServePlan['redis'] {
  if (flag === undefined && clusterFlag === undefined && file === undefined) return undefined;
  if (flag !== undefined && clusterFlag !== undefined) throw new UsageError('give --redis (one server) or --redis-cluster (a cluster\'s nodes), not both');
  if (file !== undefined && typeof file !== 'string' && (file === null || typeof file !== 'object' || Array.isArray(file))) {
    throw new UsageError(`expected config.redis to be a redis:// URL or an object of Redis store options, got ${show(file)}`);
  }
  const { url: fileUrl, cluster: fileCluster, ...options } = (typeof file === 'object' ? { ...file } : typeof file === 'string' ? { url: file } : {}) as RedisStoreOptions;
  if ('client' in options) throw new UsageError('config.redis cannot hold a client: give its url');
  const nodes = clusterFlag !== undefined ? list(clusterFlag) : flag === undefined ? fileCluster : undefined;
  if (nodes !== undefined) {
    const field = clusterFlag !== undefined ? '--redis-cluster' : 'config.redis.cluster';
    if (fileUrl !== undefined && clusterFlag === undefined) throw new UsageError('config.redis: give url (one server) or cluster (a cluster\'s nodes), not both');
    if (!Array.isArray(nodes) || nodes.length === 0) throw new UsageError(`expected ${field} to list redis:// URLs, got ${show(nodes)}`);
    nodes.forEach((node: unknown, i) => {
      if (isRedisUrl(node)) return;
      throw new UsageError(clusterFlag !== undefined ? `expected --redis-cluster to list redis:// or rediss:// URLs, got ${show(node)}` : `expected config.redis.cluster[${i}] to be a redis:// or rediss:// URL, got ${show(node)}`);
    });
    return { ...options, cluster: nodes as string[] };
  }
  const url = flag ?? fileUrl;
  const field = flag !== undefined ? '--redis' : typeof file === 'string' ? 'config.redis' : 'config.redis.url';
  if (!isRedisUrl(url)) throw new UsageError(`expected ${field} to be a redis:// or rediss:// URL, got ${show(url)}`);
  return { ...options, url };
}
