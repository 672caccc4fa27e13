/**
 * The tiers of the response cache: the memory tier (answers synchronously) and the extra stores
 * below it. Get, promote, set and delete everywhere; a store's failure is reported, never thrown.
 */
import createDebug from 'debug';
import type { Entry } from '../entry.js';
import { StoreError } from '../errors.js';
import { prepareHead } from '../serve.js';
import { MemoryStore } from '../stores/memory.js';
import { isPromise, type CacheStore } from '../stores/store.js';
import { resolveTiers } from '../stores/tiers.js';
import type { CacheEvent, EngineContext } from './types.js';
import { traceStore, tracing, type StoreContext } from '../observe/tracing.js';

const debug = createDebug('stratacache:engine');

/** Memory first, then the extra stores (`options.stores`), in order. */
export class Tiers {
  readonly memory: MemoryStore;
  readonly #lower: readonly CacheStore[];
  readonly #ctx: EngineContext;

  constructor(ctx: EngineContext) {
    this.#ctx = ctx;
    // A memory store listed in options.stores is the memory tier; otherwise one from maxSize.
    const tiers = resolveTiers('stores', ctx.options.stores);
    this.memory = tiers.memory ?? new MemoryStore({ maxSize: ctx.options.maxSize });
    this.memory.listenEvictions((key, entry) => ctx.hooks.onEntry(key, entry, undefined));
    // A hit writes a header list built once per entry: built as the entry is kept, and counted.
    this.memory.prepareWith((entry) => prepareHead(entry, ctx.statusHeaders));
    this.#lower = tiers.lower;
  }

  /**
   * Looks `key` up in the extra stores, in order. `remap` may name another key to read from the
   * same store instead (a Vary marker names the request's variant); the key looked up last is
   * returned with what was found (and the store's name as `tier`). A `promotable` find is copied
   * to every faster tier, so the next request stops higher up.
   *
   * A store with `open` (disk) may answer a large entry with its bodies left in the medium
   * (`entry.source`, see `BodySource`): such an entry is never promoted; the caller streams it to
   * the client or reads it whole with {@link whole}, and never stores it.
   */
  async findLower(
    key: string,
    remap: (found: Entry, key: string) => string | undefined,
    promotable: (entry: Entry) => boolean,
  ): Promise<{ key: string; entry: Entry | undefined; tier?: string }> {
    for (const [tier, store] of this.#lower.entries()) {
      let found = await this.#get(store, key, true);
      const other = found === undefined ? undefined : remap(found, key);
      if (other !== undefined) {
        found!.source?.release();
        key = other;
        found = await this.#get(store, key, true);
      }
      if (found === undefined) continue;
      // A large entry left in its file is streamed every time, never promoted: the memory tier
      // is for small hot entries (a store's streamThreshold says what is large).
      if (promotable(found) && found.source === undefined) {
        this.memory.set(key, found);
        for (const upper of this.#lower.slice(0, tier)) this.#setIn(upper, key, found);
      }
      return { key, entry: found, tier: store.name };
    }
    return { key, entry: undefined };
  }

  /**
   * The entry with its bodies in memory: as it is, or read from its source (undefined, reported,
   * when that fails: the file went bad).
   */
  async whole(entry: Entry): Promise<Entry | undefined> {
    if (entry.source === undefined) return entry;
    try {
      return await entry.source.load();
    } catch (error) {
      this.#ctx.report.fail(new StoreError('reading a stored body failed', { cause: error }));
      return undefined;
    }
  }

  /** `key` from memory, then the extra stores; never renders (what the peer endpoint answers). */
  async find(key: string): Promise<Entry | undefined> {
    const entry = this.memory.get(key);
    if (entry !== undefined) return entry;
    for (const store of this.#lower) {
      const found = await this.#get(store, key);
      if (found !== undefined) return found;
    }
    return undefined;
  }

  /**
   * Stores `entry` under `key` in every tier (the data cache's index hears of it). Returns false
   * when no tier keeps it: the memory tier refused it (larger than it takes) and there is no other.
   */
  set(key: string, entry: Entry): boolean {
    const kept = this.keep(key, entry);
    this.setLower(key, entry);
    return kept || this.#lower.length > 0;
  }

  /** The stores below memory, fastest first. */
  get lower(): readonly CacheStore[] {
    return this.#lower;
  }

  /**
   * Keeps an entry another node stored in a shared tier: memory only (the data cache's index hears
   * of it). Returns whether the memory tier kept it.
   */
  keep(key: string, entry: Entry): boolean {
    const before = this.memory.peek(key);
    const kept = this.memory.store(key, entry);
    this.#ctx.hooks.onEntry(key, before, kept ? entry : undefined);
    return kept;
  }

  /**
   * True when the first extra store still holds `entry` under `key` (the same render: its store
   * time, freshness and validator), read without its body.
   */
  async lowerHolds(key: string, entry: Entry): Promise<boolean> {
    const store = this.#lower[0];
    if (store === undefined) return false;
    const found = await this.#get(store, key, true);
    found?.source?.release();
    return found !== undefined && found.storedAt === entry.storedAt && found.staleAt === entry.staleAt && found.etag === entry.etag;
  }

  /** Stores `entry` under `key` in the extra stores only. */
  setLower(key: string, entry: Entry): void {
    for (const store of this.#lower) this.#setIn(store, key, entry);
  }

  #setIn(store: CacheStore, key: string, entry: Entry): void {
    try {
      const r = this.#io(store, 'set', key, () => store.set(key, entry));
      if (isPromise(r)) this.#ctx.report.track(r.catch((error: unknown) => this.#ctx.report.fail(new StoreError(`${store.name}.set failed`, { cause: error }))));
    } catch (error) {
      this.#ctx.report.fail(new StoreError(`${store.name}.set failed`, { cause: error }));
    }
  }

  /** Removes `key` from every tier. */
  delete(key: string): void {
    const before = this.memory.peek(key);
    if (before !== undefined) this.#ctx.hooks.onEntry(key, before, undefined);
    this.memory.delete(key);
    for (const store of this.#lower) {
      try {
        const r = this.#io(store, 'delete', key, () => store.delete(key));
        if (isPromise(r)) r.catch((error: unknown) => this.#ctx.report.fail(new StoreError(`${store.name}.delete failed`, { cause: error })));
      } catch (error) {
        this.#ctx.report.fail(new StoreError(`${store.name}.delete failed`, { cause: error }));
      }
    }
  }

  /**
   * Marks the entry under `key` stale now, because data it was rendered from changed. The grace
   * rules of an invalidation apply: it is served STALE while one background refresh runs for
   * `gracePeriod` (never past the time it would have gone stale anyway); after that a request
   * waits for a fresh render. Returns whether a fresh entry was marked.
   */
  markStale(key: string): boolean {
    const entry = this.memory.peek(key);
    const now = Date.now();
    if (entry === undefined || entry.staleAt <= now) return false;
    const marked: Entry = { ...entry, staleAt: now, swrUntil: Math.min(entry.staleAt, now + this.#ctx.options.gracePeriod) };
    this.memory.set(key, marked);
    this.setLower(key, marked);
    debug('stale: dependency changed %s', key);
    this.#ctx.report.emit('stale', { key, url: entry.url, reason: 'dependency changed' } satisfies CacheEvent);
    return true;
  }

  /** Releases every store (a failure is reported). */
  async close(): Promise<void> {
    for (const store of [this.memory, ...this.#lower]) {
      try {
        await store.close?.();
      } catch (error) {
        this.#ctx.report.fail(new StoreError(`${store.name}.close failed`, { cause: error }));
      }
    }
  }

  async #get(store: CacheStore, key: string, streamable = false): Promise<Entry | undefined> {
    try {
      const entry = await this.#io(store, 'get', key, () => (streamable && store.open !== undefined ? store.open(key) : store.get(key)));
      if (entry !== undefined && Date.now() >= entry.expiresAt) {
        entry.source?.release();
        return undefined;
      }
      return entry;
    } catch (error) {
      this.#ctx.report.fail(new StoreError(`${store.name}.get failed`, { cause: error }));
      return undefined;
    }
  }

  /** One operation on a lower (I/O) tier, in a `stratacache:store` span while someone subscribes. */
  #io<R>(store: CacheStore, op: StoreContext['op'], key: string, fn: () => R): R {
    return tracing.store.hasSubscribers ? traceStore(store, op, key, fn) : fn();
  }
}
