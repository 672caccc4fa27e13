/**
 * Storage and dependencies of the data cache: its memory tier (and lower tiers), the reverse
 * index of what each render read, and what a change or a delete of a key makes stale.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import createDebug from 'debug';
import type { LRUCache } from 'lru-cache';
import { boundedLru } from '../lru.js';
import type { ResponseServices } from '../seam.js';
import type { Entry } from '../entry.js';
import type { StoreError } from '../errors.js';
import { normalizeTarget } from '../key.js';
import type { ResolvedOptions } from '../options/types.js';
import { MemoryStore } from '../stores/memory.js';
import type { CacheStore } from '../stores/store.js';
import { resolveTiers } from '../stores/tiers.js';
import { DataFlights } from './flights.js';
import { DataTiers } from './tiers.js';
import { DataDeletions } from './peers.js';
import { PATHNAME, pathOf, URLKEY, VALUE } from './keys.js';
import { DATA, DependencyIndex, digest, RESPONSE, type Scope } from './scope.js';
import { deserializeValue } from './serialize.js';

const debug = createDebug('stratacache:data');

/** The data tiers and the dependency index, kept in step. */
export class DataStorage {
  readonly #engine: ResponseServices;
  readonly #maxEntrySize: number;
  readonly memory: MemoryStore;
  /** `data.stores` below memory (written through, read on a memory miss). */
  readonly lower: DataTiers;
  readonly deps: DependencyIndex;
  readonly als = new AsyncLocalStorage<Scope>();
  /** Loads in flight, detached by the invalidations covering them. */
  readonly flights = new DataFlights();
  readonly #digests = new WeakMap<Entry, string>();
  /** Local deletions a peer copy must not undo (recorded only in a cluster). */
  readonly deletions: DataDeletions;
  /**
   * Digests of peer values used but not copied here (`peers.updateLocalCache: false`), so a
   * response rendered from one is still marked stale when the key later changes here.
   */
  readonly peerDigests: LRUCache<string, string>;

  constructor(engine: ResponseServices, o: ResolvedOptions, fail: (error: StoreError) => void) {
    this.#engine = engine;
    this.#maxEntrySize = o.data.maxEntrySize;
    // A memory store listed first in data.stores is the data memory tier; the rest are lower tiers.
    const tiers = resolveTiers('data.stores', o.data.stores);
    this.memory = tiers.memory ?? new MemoryStore({ maxSize: o.data.maxSize, maxEntrySize: o.data.maxEntrySize });
    this.memory.listenEvictions((key, entry) => this.deps.unlink(DATA + key, entry.deps));
    this.lower = new DataTiers(tiers.lower, fail);
    // On Node 20 an enabled AsyncLocalStorage turns on async_hooks for the whole process: every
    // async resource (each request's socket writes, ticks, promises) then pays for propagating
    // the store, hits included (measured: about 8 us more CPU per hit in bench/hit.ts). The
    // storage is only needed while a render or load is open, so it is switched off whenever the
    // last scope closes; the next run() switches it on again.
    this.deps = new DependencyIndex({ maxKeys: o.data.maxTrackedKeys, maxDependents: o.data.maxDependents, onIdle: () => this.als.disable() });
    this.deletions = new DataDeletions(o.data.maxTrackedKeys);
    this.peerDigests = boundedLru<string, string>(o.data.maxTrackedKeys);
  }

  /**
   * Deletes the value stored by `get(key)`, and the responses stored by `fetch(key)` when `key`
   * is a URL (with any request headers; a path matches the responses fetched for it from any
   * host). Responses and data rendered from what was deleted become stale. Returns whether
   * anything was deleted. Deleting by URL scans the data keys (O(entries)).
   */
  delete(key: string): boolean {
    const keys: string[] = [VALUE + key];
    const at = Date.now();
    const clustered = this.#engine.peers !== undefined;
    // Fetched responses of a URL: one per set of request headers sent; a path's, one per host too.
    let matches: ((k: string) => boolean) | undefined;
    if (/^https?:\/\//i.test(key) && URL.canParse(key)) {
      const base = URLKEY + new URL(key).href;
      keys.push(base); // its dependents are told even when the entry itself already left memory
      matches = (k) => k.startsWith(`${base}\n`);
      if (clustered) this.deletions.record(base, at);
    } else if (key.startsWith('/')) {
      const path = normalizeTarget(key, undefined);
      if (path !== undefined) matches = (k) => k.startsWith(URLKEY + '//') && pathOf(k) === path;
      if (clustered && path !== undefined) this.deletions.record(PATHNAME + path, at);
    }
    if (matches !== undefined) for (const k of [...this.memory.keys(), ...this.flights.keys()]) if (matches(k)) keys.push(k);
    let deleted = false;
    for (const k of keys) {
      if ((this.memory.peek(k)?.expiresAt ?? 0) > at) deleted = true;
      // A load in flight is not stored, and later callers load again (see flights.ts).
      this.flights.invalidate(k, 'hard');
      if (clustered) this.deletions.record(k, at);
      this.peerDigests.delete(k);
      this.drop(k);
      this.changed(k, new Set());
    }
    return deleted;
  }

  /** Closes the lower tiers (not those the response side closes) and empties the memory tier. */
  async close(responseStores: readonly CacheStore[]): Promise<void> {
    await this.lower.close(responseStores);
    this.memory.close();
  }

  /**
   * Stores an entry with what its load read. When its bytes differ from those its dependents
   * were rendered from, they become stale.
   */
  put(k: string, entry: Entry, scope: Scope, writeThrough = true): void {
    if (scope.reads.size > 0) entry.deps = [...scope.reads];
    if (scope.tainted) (entry.swrUntil = Math.max(entry.swrUntil, entry.staleAt)), (entry.staleAt = entry.storedAt);
    const before = this.memory.peek(k);
    if (entry.body.length <= this.#maxEntrySize) {
      this.memory.set(k, entry);
      if (writeThrough && !this.lower.empty) this.lower.write(k, entry);
    } else debug('not stored: %s over data.maxEntrySize', k);
    this.deps.unlink(DATA + k, before?.deps);
    this.deps.link(DATA + k, entry.deps, (key) => this.digestOf(key));
    const sum = digest(entry.body);
    this.#digests.set(entry, sum);
    if (this.deps.changed(k, sum)) this.changed(k, new Set());
  }

  drop(k: string): void {
    if (!this.lower.empty) this.lower.remove(k);
    const before = this.memory.peek(k);
    if (before === undefined) return;
    this.memory.delete(k);
    this.deps.unlink(DATA + k, before.deps);
  }

  /** `k` was deleted or changed: what was rendered from it is stale (responses) or dropped (data). */
  changed(k: string, seen: Set<string>): void {
    if (seen.has(k)) return;
    seen.add(k);
    let responses = false;
    for (const dependent of this.deps.take(k)) {
      const key = dependent.slice(1);
      if (dependent.startsWith(RESPONSE)) (this.#engine.markStale(key), (responses = true));
      else {
        debug('dropped: %s read %s, which changed', key, k);
        // A peer's copy read the old bytes too: it must not come back in its place.
        if (this.#engine.peers !== undefined) this.deletions.record(key, Date.now());
        this.peerDigests.delete(key);
        this.drop(key);
        this.changed(key, seen);
      }
    }
    if (responses) this.#engine.dataChanged(k);
  }

  /**
   * Tags were invalidated (cache.invalidateTags, a flush, a peer, a namespace's clear()): what
   * was rendered from data carrying one of them turns stale, as after delete(), and so does what
   * is being rendered from a load of such data still in flight (its value is stored already
   * stale; not at all when `hard`). The values themselves are loaded again on their next read
   * (see get); a `hard` invalidation drops them at once (not even served on error). Scans the
   * data keys (O(entries)).
   */
  tagsInvalidated(tags: readonly string[], hard: boolean): void {
    const wanted = new Set(tags);
    const reached: string[] = [];
    // A snapshot of the keys: drop() below changes the table a live iteration walks.
    for (const k of [...this.memory.keys()]) if (this.memory.peek(k)?.tags.some((t) => wanted.has(t))) reached.push(k);
    reached.push(...this.flights.invalidateTagged(wanted, hard ? 'hard' : 'soft'));
    for (const k of reached) {
      if (hard) this.drop(k);
      this.changed(k, new Set());
    }
  }

  digestOf(k: string): string | undefined {
    const entry = this.memory.get(k);
    if (entry === undefined) return this.peerDigests.get(k);
    let sum = this.#digests.get(entry);
    if (sum === undefined) this.#digests.set(entry, (sum = digest(entry.body)));
    return sum;
  }

  /** Records that the render in progress (if any) read `k`. */
  read(k: string): void {
    this.als.getStore()?.reads.add(k);
  }

  /** The render or load in progress (if any) read data an invalidation overtook: stale at birth. */
  taint(): void {
    const scope = this.als.getStore();
    if (scope === undefined) return;
    scope.tainted = true;
    scope.onTaint?.();
  }

  /** Decodes a stored value (get). */
  value(source: { headers: Array<[string, string]>; body: Buffer }, key: string): unknown {
    return deserializeValue(source.body, source.headers.find(([n]) => n === 'content-type')?.[1], key);
  }
}

/** A scope for storing a peer's copy: it read nothing here (the copy keeps the deps its node recorded). */
export function detachedScope(): Scope {
  return { reads: new Set(), chain: [], host: '', runner: undefined, tainted: false };
}
