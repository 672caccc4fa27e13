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
  xinfo(subcommand: 'STREAM', key: string): Promise<unknown>;
  duplicate(override?: Record<string, unknown>): RedisClientLike;
  quit(): Promise<unknown>;
  disconnect(): void;
  on(event: 'error' | 'ready' | 'close' | 'end', listener: (...args: unknown[]) => void): unknown;
  readonly status: string;
}

/** What installing the optional peer dependency looks like, for the error when it is missing. */
export const INSTALL_HINT = 'redisStore({ url }) needs the optional peer dependency ioredis: run `npm install ioredis` (or pass a connected ioredis/iovalkey client as { client })';

/** Loads `ioredis` (injectable for tests). */
export type ClientModuleLoader = () => Promise<unknown>;

/**
 * Creates an owned client for `url`: commands fail at once while disconnected (no offline queue:
 * a request must not wait for Redis to come back), and the client reconnects by itself with a
 * capped backoff.
 * @throws Error with {@link INSTALL_HINT} when `ioredis` is not installed.
 */
export async function connectClient(url: string, commandTimeout: number, load: ClientModuleLoader): Promise<RedisClientLike> {
  let mod: { default?: unknown; Redis?: unknown };
  try {
    mod = (await load()) as { default?: unknown; Redis?: unknown };
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException | undefined)?.code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') throw new Error(INSTALL_HINT, { cause });
    throw cause;
  }
  const Redis = (mod.Redis ?? mod.default) as new (url: string, options: Record<string, unknown>) => RedisClientLike;
  return new Redis(url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout,
    connectTimeout: Math.max(1000, commandTimeout * 10),
    retryStrategy: (times: number) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
  });
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
