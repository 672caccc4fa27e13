/**
 * Shared tier on Redis or Valkey: `createCache({ stores: [await redisStore({ url })] })`. Every
 * node pointed at the same Redis (and `prefix`) shares its entries, its invalidations and a render
 * lease per key, so a cold page is rendered once between them.
 *
 * - Entries are stored whole as {@link encodeEntry} bytes (binary, no base64) under
 *   `<prefix>e:<key>` (on a Redis Cluster hash-tagged, `<prefix>{<tag>}e:<key>`: see
 *   redis-keys.ts), with a TTL of the entry's own lifetime (stale windows included: `expiresAt`),
 *   so Redis drops them when they are useless. Larger than `maxEntrySize`: not written.
 * - Each value carries the SHA-256 of the Redis key it was written under, checked on read: a value
 *   that does not decode, or that was written for another key (copied, renamed), is removed and
 *   read as a store error (counted in `corrupt`, reported as an `error` event), never served. A
 *   value in the format of an older version is removed and read as a miss (`outdated`).
 * - Every command is bounded by `commandTimeout` and a circuit breaker (the peers' breaker):
 *   Redis down or slow costs one timeout, then the tier is skipped (a miss) until a probe
 *   succeeds after `coolDown`. Failures reject (the engine counts them and emits `error`); no
 *   response ever fails because of Redis.
 * - The client reconnects by itself (an owned client, made from `url` or `cluster`); a client
 *   passed as `client` is the caller's to configure and close. A Redis Cluster (`cluster`, or an
 *   `ioredis` `Cluster` as `client`) spreads the keys over its slots; each command names one key
 *   (or keys of one hash tag), so the client sends it to the master of that slot.
 */
import { createHash, randomBytes } from 'node:crypto';
import createDebug from 'debug';
import { decodeEntry, encodeEntry, type Entry } from '../entry.js';
import { StoreError } from '../errors.js';
import { describeValue, integerOption } from '../options/validate.js';
import { type Bytes, type Count, type Milliseconds } from '../options/units.js';
import { connectClient, connectCluster, GuardedClient, SKIPPED, type ClientModuleLoader, type RedisClientLike, type RedisCounters } from './redis-client.js';
import { redisKeyNames, type RedisKeyNames } from './redis-keys.js';
import { RedisLeases } from './redis-lease.js';
import { RedisMembers } from './redis-members.js';
import { RedisInvalidations } from './redis-sync.js';
import type { CacheStore } from './store.js';
import type { BreakerState } from '../peers/breaker.js';

const debug = createDebug('stratacache:store');

/** Options of {@link redisStore}. Give one of `client`, `url` and `cluster`. */
export interface RedisStoreOptions {
  /**
   * A connected `ioredis` (or `iovalkey`) client to use. The store never closes it. Prefer a
   * client created with `enableOfflineQueue: false`, so commands fail at once while Redis is down.
   * @default undefined (then `url` is required)
   */
  client?: RedisClientLike;
  /**
   * `redis://[user:password@]host:port[/db]` (or `rediss://`): the store creates, owns and closes
   * its client (`ioredis`, an optional peer dependency: `npm install ioredis`).
   * @default undefined (then `client` or `cluster` is required)
   */
  url?: string;
  /**
   * Seed nodes of a Redis Cluster (or Valkey cluster), `redis://[user:password@]host:port` (or
   * `rediss://`), at least one: the store creates, owns and closes an `ioredis` `Cluster` client,
   * which learns the other nodes and the slot map from them. The credentials and TLS of the first
   * URL apply to every node. Keys are then hash-tagged (see `prefix`). For settings beyond these
   * (NAT maps, replicas for reads), pass your own `Cluster` as `client`.
   * @default undefined (then `client` or `url` is required)
   */
  cluster?: readonly string[];
  /**
   * Prefix of every key this store writes (`<prefix>e:<key>` entries, `<prefix>inv` invalidations and `<prefix>inv:epoch` its identity,
   * `<prefix>lease:<key>` render leases, `<prefix>{members}:nodes` the nodes' heartbeats). On a Redis Cluster the names carry a hash tag:
   * `<prefix>{<tag>}e:<key>` and `<prefix>{<tag>}lease:<key>` (`<tag>`: 16 hex digits of the
   * SHA-1 of the key, so a key's entry and lease share a slot), `<prefix>{inv}` and
   * `<prefix>{inv}:epoch`; its prefix may not contain `{` or `}`. Caches that must not share data use different prefixes.
   * @default 'stratacache:'
   */
  prefix?: string;
  /** Largest encoded entry in bytes written to Redis; a larger one is not stored there. @default 8388608 (8 MiB) */
  maxEntrySize?: Bytes;
  /** Most ms one command may take before it counts as a failure (and the request goes on without Redis). @default 250 */
  commandTimeout?: Milliseconds;
  /** Consecutive failed commands that open the breaker (Redis is then skipped). @default 3 */
  failureThreshold?: Count;
  /** How long in ms an open breaker skips Redis before one probe command. @default 1000 */
  coolDown?: Milliseconds;
  /**
   * Lifetime in ms of a render lease: nodes sharing this Redis wait for the node holding a key's
   * lease instead of rendering that key themselves; a lease whose holder died expires after this.
   * @default 15000
   */
  leaseTtl?: Milliseconds;
  /**
   * Longest a node waits in ms for another node's render of the same key (polling Redis for the
   * entry) before rendering it itself.
   * @default 10000
   */
  leaseWait?: Milliseconds;
  /** Invalidation records kept in Redis for nodes that were disconnected to catch up on. @default 1000 */
  maxInvalidations?: Count;
}

/** Defaults of {@link RedisStoreOptions} (frozen). */
export const REDIS_DEFAULTS = Object.freeze({
  client: undefined,
  url: undefined,
  cluster: undefined,
  prefix: 'stratacache:',
  maxEntrySize: 8 * 1024 * 1024,
  commandTimeout: 250,
  failureThreshold: 3,
  coolDown: 1000,
  leaseTtl: 15_000,
  leaseWait: 10_000,
  maxInvalidations: 1000,
});

/** Counters of a Redis store, in `cache.stats().tiers`. */
export interface RedisStats extends RedisCounters {
  /** `open` while Redis is treated as down and skipped. */
  breaker: BreakerState;
  /** Invalidations sent to / received from the other nodes. */
  invalidationsPublished: number;
  invalidationsApplied: number;
  /** Renders this node did under a lease, and waits for another node's render that ended with its entry. */
  leasesAcquired: number;
  leaseWaitHits: number;
  /** Values under the prefix that did not decode or were written for another key: removed, reported. */
  corrupt: number;
  /** Values in an older version's format: removed, read as misses. */
  outdated: number;
}

/** First bytes of every value this store writes ('SCR1'), then the SHA-256 of its Redis key, then the entry. */
const VALUE_MAGIC = Buffer.from('SCR1', 'latin1');
const VALUE_HEAD = VALUE_MAGIC.length + 32;

/** Deletes KEYS[1] only if its value still has the SHA-1 ARGV[1] (a newer value written meanwhile stays). */
const DELETE_IF_SAME = "local v = redis.call('GET', KEYS[1]) if v and redis.sha1hex(v) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";

const isRedisUrl = (url: unknown): url is string => typeof url === 'string' && /^rediss?:\/\/[^/]/.test(url) && URL.canParse(url);

const sha256 = (text: string): Buffer => createHash('sha256').update(text).digest();

/** The bytes stored under `redisKey` for `entry`. */
function frameValue(redisKey: string, entry: Entry): Buffer {
  const bytes = encodeEntry(entry);
  const out = Buffer.allocUnsafe(VALUE_HEAD + bytes.length);
  VALUE_MAGIC.copy(out, 0);
  sha256(redisKey).copy(out, VALUE_MAGIC.length);
  bytes.copy(out, VALUE_HEAD);
  return out;
}

/** The entry in a value read under `redisKey`, `'outdated'`, or why it is refused. */
function readValue(redisKey: string, value: Buffer): Entry | 'outdated' | { refused: string } {
  if (value.length < VALUE_HEAD || !value.subarray(0, VALUE_MAGIC.length).equals(VALUE_MAGIC)) {
    try {
      decodeEntry(value);
      return 'outdated';
    } catch (error) {
      return { refused: `does not decode (${(error as Error).message})` };
    }
  }
  if (!value.subarray(VALUE_MAGIC.length, VALUE_HEAD).equals(sha256(redisKey))) return { refused: 'was written for another key' };
  try {
    return decodeEntry(value.subarray(VALUE_HEAD));
  } catch (error) {
    return { refused: `does not decode (${(error as Error).message})` };
  }
}

type Resolved = Required<Omit<RedisStoreOptions, 'client' | 'url' | 'cluster'>>;

/** The shared tier. Create it with {@link redisStore}. */
export class RedisStore implements CacheStore {
  readonly name = 'redis';
  /** This node's id in the records and leases it writes (random per store). */
  readonly node = randomBytes(8).toString('hex');
  readonly options: Resolved;
  readonly #guard: GuardedClient;
  readonly #owned: boolean;
  /** The names of the keys this store writes (hash-tagged on a cluster). */
  readonly keys: RedisKeyNames;
  /** Invalidation records shared through Redis (see {@link RedisInvalidations}). */
  readonly invalidations: RedisInvalidations;
  /** Render leases for cross-node single flight (see {@link RedisLeases}). */
  readonly leases: RedisLeases;
  /** Heartbeats of the nodes sharing this Redis, for `peers.discover: { redis: true }` (see {@link RedisMembers}). */
  readonly members: RedisMembers;
  #corrupt = 0;
  #outdated = 0;

  /** @internal use {@link redisStore}. */
  constructor(client: RedisClientLike, owned: boolean, options: Resolved) {
    this.options = options;
    this.#owned = owned;
    this.#guard = new GuardedClient(client, options);
    this.keys = redisKeyNames(options.prefix, client.isCluster === true);
    this.invalidations = new RedisInvalidations(this.#guard, { stream: this.keys.stream, epoch: this.keys.epoch, node: this.node, max: options.maxInvalidations });
    this.members = new RedisMembers(this.#guard, this.keys.members);
    this.leases = new RedisLeases(this.#guard, { name: this.keys.lease, node: this.node, ttl: options.leaseTtl, wait: options.leaseWait, read: (key) => this.get(key) });
  }

  /**
   * The entry under `key`; a miss while Redis is down or skipped, or for an older version's value
   * (removed). Rejects when a command fails, and for a value that does not decode or was written
   * for another key (removed first).
   */
  async get(key: string): Promise<Entry | undefined> {
    const redisKey = this.#key(key);
    const bytes = await this.#guard.run('get', (c) => c.getBuffer(redisKey));
    if (bytes === SKIPPED || bytes === null) return undefined;
    const read = readValue(redisKey, bytes);
    if (read !== 'outdated' && !('refused' in read)) return Date.now() >= read.expiresAt ? undefined : read;
    const digest = createHash('sha1').update(bytes).digest('hex');
    await this.#guard.run('del', (c) => c.eval(DELETE_IF_SAME, 1, redisKey, digest)).catch(() => undefined);
    if (read === 'outdated') {
      this.#outdated++;
      debug('redis miss: a value of an older version under %s, removed', key);
      return undefined;
    }
    this.#corrupt++;
    throw new StoreError(`redis value under ${JSON.stringify(key)} ${read.refused}: removed`);
  }

  /** Writes `entry` with a TTL of its remaining lifetime; too large or already expired removes the key instead. */
  async set(key: string, entry: Entry): Promise<void> {
    const ttl = Math.ceil(entry.expiresAt - Date.now());
    const bytes = ttl > 0 ? frameValue(this.#key(key), entry) : undefined;
    if (bytes === undefined || bytes.length > this.options.maxEntrySize) {
      debug('redis skip: %s %s', bytes === undefined ? 'expired' : `too large (${bytes.length} bytes)`, key);
      return this.delete(key);
    }
    await this.#guard.run('set', (c) => c.set(this.#key(key), bytes, 'PX', ttl));
  }

  async delete(key: string): Promise<void> {
    await this.#guard.run('del', (c) => c.del(this.#key(key)));
  }

  /** Command counters, breaker state, invalidations and leases. */
  stats(): RedisStats {
    return {
      ...this.#guard.counters,
      breaker: this.#guard.state,
      invalidationsPublished: this.invalidations.published,
      invalidationsApplied: this.invalidations.applied,
      leasesAcquired: this.leases.acquired,
      leaseWaitHits: this.leases.waitHits,
      corrupt: this.#corrupt,
      outdated: this.#outdated,
    };
  }

  /** Stops the invalidation reader and, for an owned client, disconnects. */
  async close(): Promise<void> {
    await this.invalidations.close();
    if (this.#owned) {
      const client = this.#guard.client;
      await Promise.race([client.quit().catch(() => undefined), new Promise((r) => setTimeout(r, this.options.commandTimeout).unref())]);
      client.disconnect();
    }
  }

  #key(key: string): string {
    return this.keys.entry(key);
  }
}

/**
 * Creates the shared Redis/Valkey tier. With `url` (one server) or `cluster` (a Redis Cluster's
 * seed nodes) it loads `ioredis` (an optional peer dependency) and owns the connection; with
 * `client` it uses yours.
 * @throws TypeError or RangeError naming `options.<field>` and the value it got; an Error saying
 * to `npm install ioredis` when `url` is given and the package is missing.
 */
export async function redisStore(options: RedisStoreOptions, load: ClientModuleLoader = () => import('ioredis')): Promise<RedisStore> {
  if (options === null || typeof options !== 'object') throw new TypeError(`expected options to be an object, got ${describeValue(options)}`);
  const o = { ...REDIS_DEFAULTS, ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) } as RedisStoreOptions & Resolved;
  for (const name of Object.keys(options)) if (!(name in REDIS_DEFAULTS)) throw new TypeError(`unknown option options.${name}`);
  const given = (['client', 'url', 'cluster'] as const).filter((name) => o[name] !== undefined);
  if (given.length !== 1) throw new TypeError(`expected exactly one of options.client, options.url and options.cluster, got ${given.length === 0 ? 'none' : given.join(' and ')}`);
  if (o.url !== undefined && !isRedisUrl(o.url)) throw new TypeError(`expected options.url to be a redis:// or rediss:// URL, got ${describeValue(o.url)}`);
  if (o.cluster !== undefined) {
    if (!Array.isArray(o.cluster) || o.cluster.length === 0) throw new TypeError(`expected options.cluster to be a non-empty array of redis:// URLs, got ${describeValue(o.cluster)}`);
    o.cluster.forEach((url: unknown, i) => {
      if (!isRedisUrl(url) || !/^\/?$/.test(new URL(url).pathname)) throw new TypeError(`expected options.cluster[${i}] to be a redis:// or rediss:// URL without a database number (a cluster has only database 0), got ${describeValue(url)}`);
    });
  }
  if (o.client !== undefined && (typeof o.client !== 'object' || typeof o.client.getBuffer !== 'function' || typeof o.client.duplicate !== 'function')) {
    throw new TypeError(`expected options.client to be an ioredis or iovalkey client, got ${describeValue(o.client)}`);
  }
  if (typeof o.prefix !== 'string') throw new TypeError(`expected options.prefix to be a string, got ${describeValue(o.prefix)}`);
  const resolved: Resolved = {
    prefix: o.prefix,
    maxEntrySize: integerOption('maxEntrySize', o.maxEntrySize, 1),
    commandTimeout: integerOption('commandTimeout', o.commandTimeout, 1, 60_000),
    failureThreshold: integerOption('failureThreshold', o.failureThreshold, 1, 1000),
    coolDown: integerOption('coolDown', o.coolDown, 1),
    leaseTtl: integerOption('leaseTtl', o.leaseTtl, 1),
    leaseWait: integerOption('leaseWait', o.leaseWait, 0),
    maxInvalidations: integerOption('maxInvalidations', o.maxInvalidations, 1, 1_000_000),
  };
  if ((o.cluster !== undefined || o.client?.isCluster === true) && /[{}]/.test(resolved.prefix)) {
    throw new RangeError(`expected options.prefix to contain no { or } on a Redis Cluster (the store hash-tags its keys itself), got ${describeValue(resolved.prefix)}`);
  }
  const owned = o.client === undefined;
  const client = o.client ?? (o.cluster !== undefined ? await connectCluster(o.cluster, resolved.commandTimeout, load) : await connectClient(o.url!, resolved.commandTimeout, load));
  // An owned client's connection errors are reported through the commands that fail; without a
  // listener ioredis would print each reconnect attempt.
  if (owned) {
    client.on('error', (error) => debug('redis connection: %s', (error as Error).message));
    // Commands fail at once while disconnected, so wait (briefly) for the first connection. A
    // Redis that is down at start-up does not hold the cache up: the tier is skipped until it answers.
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, Math.max(1000, resolved.commandTimeout * 4));
      client.on('ready', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
  return new RedisStore(client, owned, resolved);
}
