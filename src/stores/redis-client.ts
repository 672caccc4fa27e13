/**
 * The Redis/Valkey client the shared tier talks through: the shape it needs (structural, so an
 * `ioredis` or `iovalkey` client fits without this package's types depending on either), loading
 * `ioredis` on demand (an optional peer dependency), and every command bounded by a timeout and a
 * circuit breaker so a slow or dead Redis costs at most one timeout before it is skipped.
 */
import createDebug from 'debug';
import { CircuitBreaker, type BreakerState } from '../peers/breaker.js';
import { StoreError } from '../errors.js';

const debug = createDebug('stratacache:store');

/**
 * The commands the Redis store uses, as `ioredis` (and its fork `iovalkey`) declare them. Any
 * client with these methods works.
 */
export interface RedisClientLike {
  getBuffer(key: string): Promise<Buffer | null>;
  set(key: string, value: Buffer | string, px: 'PX', milliseconds: number): Promise<unknown>;
  set(key: string, value: Buffer | string, px: 'PX', milliseconds: number, nx: 'NX'): Promise<unknown>;
  del(...keys: string[]): Promise<number>;
  eval(script: string, numKeys: number, ...args: Array<string | number | Buffer>): Promise<unknown>;
  xadd(key: string, ...args: Array<string | number>): Promise<string | null>;
  xread(...args: Array<string | number>): Promise<unknown>;
  /**
   * A new connection with the same settings (the invalidation reader's). `ioredis` takes option
   * overrides, a `Cluster` its startup nodes and then overrides: see {@link readerClient}.
   */
  duplicate(...args: never[]): RedisClientLike;
  quit(): Promise<unknown>;
  disconnect(): void;
  on(event: 'error' | 'ready' | 'close' | 'end', listener: (...args: unknown[]) => void): unknown;
  readonly status: string;
  /** True on an `ioredis`/`iovalkey` `Cluster`: the store then hash-tags its keys (see redis-keys.ts). */
  readonly isCluster?: boolean;
}

/** What installing the optional peer dependency looks like, for the error when it is missing. */
export const INSTALL_HINT = 'redisStore({ url }) needs the optional peer dependency ioredis: run `npm install ioredis` (or pass a connected ioredis/iovalkey client as { client })';

/** Loads `ioredis` (injectable for tests). */
export type ClientModuleLoader = () => Promise<unknown>;

/** The reconnection backoff of owned clients (ms after `times` attempts). */
const backoff = (times: number): number => Math.min(50 * 2 ** Math.min(times, 6), 2000);

async function loadModule(load: ClientModuleLoader): Promise<{ default?: unknown; Redis?: unknown; Cluster?: unknown }> {
  try {
    return (await load()) as { default?: unknown; Redis?: unknown; Cluster?: unknown };
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException | undefined)?.code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') throw new Error(INSTALL_HINT, { cause });
    throw cause;
  }
}

/** Per-connection settings of owned clients: no retries of a failed command, bounded connects. */
function connectionOptions(commandTimeout: number): Record<string, unknown> {
  return { maxRetriesPerRequest: 0, commandTimeout, connectTimeout: Math.max(1000, commandTimeout * 10) };
}

/**
 * Creates an owned client for `url`: commands fail at once while disconnected (no offline queue:
 * a request must not wait for Redis to come back), and the client reconnects by itself with a
 * capped backoff.
 * @throws Error with {@link INSTALL_HINT} when `ioredis` is not installed.
 */
export async function connectClient(url: string, commandTimeout: number, load: ClientModuleLoader): Promise<RedisClientLike> {
  const mod = await loadModule(load);
  const Redis = (mod.Redis ?? mod.default) as new (url: string, options: Record<string, unknown>) => RedisClientLike;
  return new Redis(url, { ...connectionOptions(commandTimeout), enableOfflineQueue: false, retryStrategy: backoff });
}

/**
 * Creates an owned `ioredis` `Cluster` client from seed node URLs (it learns the other nodes and
 * the slot map from them). The user name, password and TLS (`rediss://`) of the first URL apply
 * to every node, as a cluster has one set of credentials. Like {@link connectClient}: no offline
 * queue, reconnection with a capped backoff.
 * @throws Error with {@link INSTALL_HINT} when `ioredis` is not installed.
 */
export async function connectCluster(urls: readonly string[], commandTimeout: number, load: ClientModuleLoader): Promise<RedisClientLike> {
  const mod = await loadModule(load);
  const Cluster = (mod.Cluster ?? (mod.default as { Cluster?: unknown } | undefined)?.Cluster) as new (nodes: Array<{ host: string; port: number }>, options: Record<string, unknown>) => RedisClientLike;
  const first = new URL(urls[0]!);
  const nodes = urls.map((u) => {
    const { hostname, port } = new URL(u);
    return { host: hostname.replace(/^\[(.*)\]$/, '$1'), port: port === '' ? 6379 : Number(port) };
  });
  const redisOptions: Record<string, unknown> = { ...connectionOptions(commandTimeout) };
  if (first.username !== '') redisOptions.username = decodeURIComponent(first.username);
  if (first.password !== '') redisOptions.password = decodeURIComponent(first.password);
  if (first.protocol === 'rediss:') redisOptions.tls = {};
  return new Cluster(nodes, {
    enableOfflineQueue: false,
    clusterRetryStrategy: backoff,
    // A command whose node connection closed is tried again soon (a node's first connection can
    // close a command under way), but only a few times: a command for a dead master's slots
    // fails within tens of ms instead of waiting out its timeout (the request goes on without
    // Redis). The slot map is re-read every 5 s and on each MOVED reply, so a replica that took
    // over is found.
    retryDelayOnFailover: 20,
    maxRedirections: 4,
    retryDelayOnClusterDown: 0,
    slotsRefreshInterval: 5000,
    slotsRefreshTimeout: Math.max(1000, commandTimeout * 4),
    redisOptions,
  });
}

/**
 * A new connection like `client` for the invalidation reader, whose blocking reads may take
 * `commandTimeout` ms, failing at once while disconnected. A `Cluster` keeps its nodes and
 * connection settings (credentials, TLS) with the timeout replaced.
 */
export function readerClient(client: RedisClientLike, commandTimeout: number): RedisClientLike {
  const duplicate = client.duplicate.bind(client) as (...args: unknown[]) => RedisClientLike;
  if (client.isCluster !== true) return duplicate({ commandTimeout, enableOfflineQueue: false });
  const redisOptions = (client as { options?: { redisOptions?: Record<string, unknown> } }).options?.redisOptions;
  return duplicate([], { enableOfflineQueue: false, redisOptions: { ...redisOptions, commandTimeout } });
}

/** Counters of one {@link GuardedClient}. */
export interface RedisCounters {
  /** Commands sent. */
  commands: number;
  /** Commands that failed (connection refused or lost, server error). */
  errors: number;
  /** Commands that got no answer within `commandTimeout`. */
  timeouts: number;
  /** Commands not sent because the breaker was open (Redis known to be down). */
  skipped: number;
}

/** A value the guard returns instead of calling Redis while its breaker is open. */
export const SKIPPED = Symbol('skipped');

/**
 * Runs commands through a timeout and a circuit breaker. A failure or timeout rejects with a
 * {@link StoreError} (the engine counts and reports it); while the breaker is open a command is
 * not sent at all and resolves to {@link SKIPPED}.
 */
export class GuardedClient {
  readonly client: RedisClientLike;
  readonly counters: RedisCounters = { commands: 0, errors: 0, timeouts: 0, skipped: 0 };
  readonly #breaker: CircuitBreaker;
  readonly #timeout: number;

  constructor(client: RedisClientLike, options: { commandTimeout: number; failureThreshold: number; coolDown: number }) {
    this.client = client;
    this.#timeout = options.commandTimeout;
    this.#breaker = new CircuitBreaker({ failureThreshold: options.failureThreshold, coolDown: options.coolDown });
  }

  /** The breaker's state: `open` while Redis is treated as down. */
  get state(): BreakerState {
    return this.#breaker.state;
  }

  /** Runs `command` unless the breaker is open; rejects on failure or after `commandTimeout`. */
  async run<T>(what: string, command: (client: RedisClientLike) => Promise<T>): Promise<T | typeof SKIPPED> {
    const grant = this.#breaker.allow();
    if (grant === false) {
      this.counters.skipped++;
      return SKIPPED;
    }
    this.counters.commands++;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new TimeoutSignal()), this.#timeout);
    });
    try {
      const result = await Promise.race([command(this.client), timedOut]);
      this.#breaker.success();
      return result;
    } catch (error) {
      this.#breaker.failure();
      const timeout = error instanceof TimeoutSignal || /timed out/i.test((error as Error | undefined)?.message ?? '');
      if (timeout) this.counters.timeouts++;
      else this.counters.errors++;
      debug('redis %s failed: %s (breaker %s)', what, timeout ? 'timeout' : (error as Error).message, this.#breaker.state);
      throw new StoreError(`redis ${what} ${timeout ? `timed out after ${this.#timeout} ms` : 'failed'}`, { cause: timeout ? undefined : error });
    } finally {
      clearTimeout(timer);
    }
  }
}

class TimeoutSignal extends Error {}
