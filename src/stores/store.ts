/**
 * The one small contract every storage tier implements. Methods may answer synchronously (the
 * memory tier does, so a hit costs no promise) or with a promise (disk, Redis).
 *
 * The contract, checked for every built-in store by the suite exported as `stratacache/testing`
 * (run it on a store of your own: `storeContract('mine', ({ maxSize }) => new MyStore(...))`):
 *
 * - `get` of a key never stored, deleted, evicted or past the entry's `expiresAt` is `undefined`;
 *   it never throws or rejects for a missing key.
 * - `get` after `set` returns an equal entry: status, repeated headers in order, every byte of a
 *   binary body, every time field, validators, vary, tags and the other encoded fields
 *   (`encodeEntry` carries exactly what must survive).
 * - `set` replaces atomically: a concurrent `get` sees the old entry or the new one, whole.
 * - Operations on one key take effect in call order, even when the caller does not await them
 *   (the engine writes in the background).
 * - Keys are arbitrary strings (any bytes of UTF-8, newlines, `..`, thousands of characters);
 *   two keys never share an entry.
 * - The store is bounded: a store that holds a byte budget never holds more than it (`size()`),
 *   dropping the least recently used entries first; an entry larger than the store's entry bound
 *   is not stored (and the older entry under its key is removed).
 * - A failure of the medium (file system, network) rejects or throws: the engine counts it, emits
 *   `error`, and serves the response anyway. A store never needs to protect the response itself.
 */
import type { Entry } from '../entry.js';

/** A value or a promise of it. */
export type MaybePromise<T> = T | Promise<T>;

/** A storage tier: memory, disk, Redis, or anything else with these operations. */
export interface CacheStore {
  /** A short name for stats and errors (`'memory'`, `'disk'`, `'redis'`). */
  readonly name: string;
  /** The entry under `key`, or undefined. Must not throw for a missing key. */
  get(key: string): MaybePromise<Entry | undefined>;
  /**
   * Optional: like `get`, but a large entry's bodies may stay in the medium until sent: the entry
   * then has an empty `body` and a `source` (see `BodySource`) to stream or load them from. Only
   * the response cache's lookups call it (the disk store implements it); without it they use `get`.
   */
  open?(key: string): MaybePromise<Entry | undefined>;
  /** Stores `entry` under `key`, replacing any previous one atomically (a reader sees old or new). */
  set(key: string, entry: Entry): MaybePromise<void>;
  /** Removes `key`; removing a missing key is not an error. */
  delete(key: string): MaybePromise<void>;
  /** Entries and bytes held, when the store can tell cheaply. */
  size?(): { entries: number; bytes: number };
  /** Releases resources (timers, file handles, connections). */
  close?(): MaybePromise<void>;
  /** Counters and states for `cache.stats().tiers` (the Redis store's commands, errors, breaker). */
  stats?(): object;
  /**
   * A store shared by several nodes may coordinate their renders: a node leading a cold key
   * takes its lease; the others wait for the entry instead of rendering it too.
   */
  readonly leases?: RenderLeases;
  /** A store shared by several nodes may carry their invalidations to each other. */
  readonly invalidations?: SharedInvalidations;
  /** A store shared by several nodes may list them: heartbeats for `peers.discover: { redis: true }`. */
  readonly members?: SharedMembers;
}

/** Cluster members announced through a store shared by the nodes (heartbeats with a lifetime). */
export interface SharedMembers {
  /**
   * Announces `self` for `ttl` ms and returns every member still announced (`self` included), or
   * undefined when the store is skipped (down, breaker open): keep the last list. Rejects when it fails.
   */
  announce(self: string, ttl: number): Promise<readonly string[] | undefined>;
  /** Withdraws `self` at once (on close). Never rejects. */
  leave(self: string): Promise<void>;
}

/** Render leases of a shared store (cross-node single flight). */
export interface RenderLeases {
  /** `'lead'`: this node renders `key`; `'held'`: another node does; `'unavailable'`: render as if alone. */
  acquire(key: string): Promise<'lead' | 'held' | 'unavailable'>;
  /** Gives the lease back (after the entry was written, so waiters find it). Never rejects. */
  release(key: string): Promise<void>;
  /** Waits for the holder's entry under `entryKey` that `accept` takes; undefined to render here. */
  waitFor(key: string, entryKey: string, accept: (entry: Entry) => boolean): Promise<Entry | undefined>;
  /**
   * Reads `entryKey` once more right after this node took the lease: the previous holder may have
   * stored its entry and released between this node's miss and its `acquire`. The entry when
   * `accept` takes it (then nothing needs rendering), else undefined. Never rejects.
   */
  recheck(entryKey: string, accept: (entry: Entry) => boolean): Promise<Entry | undefined>;
}

/** An invalidation as it travels between nodes sharing a store. */
export interface SharedInvalidation {
  paths: readonly string[];
  tags: readonly string[];
  scope: 'tree' | 'resource';
  hard: boolean;
  /** Epoch ms on the node that received it. */
  at: number;
}

/** Invalidations carried between the nodes sharing a store. */
export interface SharedInvalidations {
  /** Sends a local invalidation to the other nodes. */
  publish(record: SharedInvalidation): void;
  /** Starts delivering the other nodes' invalidations (with the sending node's id) to `apply`. */
  start(apply: (record: SharedInvalidation, node: string) => void): void;
}

/** True when a value is a promise (or thenable), so callers can stay synchronous otherwise. */
export function isPromise<T>(v: MaybePromise<T>): v is Promise<T> {
  return typeof (v as { then?: unknown } | undefined)?.then === 'function';
}
