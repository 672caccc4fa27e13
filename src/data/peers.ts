/**
 * The data cache's side of the peer cluster (namespace `d`): which entry a peer sent may be used
 * here, and the local record of deletions that a peer copy must not undo. Plain values in, plain
 * values out: testable without sockets. The asking, the breakers and the counters are the
 * response cache's {@link PeerCluster}, shared.
 */
import type { LRUCache } from 'lru-cache';
import { boundedLru } from '../lru.js';
import type { Entry } from '../entry.js';

/** The peer namespace of the data cache. */
export const DATA_NAMESPACE = 'd';

/** How a peer's data entry may be used here. */
export type PeerDataUse = 'fresh' | 'stale';

/** What {@link judgePeerData} checks an entry against. */
export interface PeerDataContext {
  /** The data key asked for (`v:<key>` for a value, `u:<url>[\n<name>:<value>...]` for a fetch). */
  key: string;
  /** The entry's `url` as this node stores it under `key` (the key minus its prefix). */
  url: string;
  /** Now, epoch ms on this node's clock. */
  now: number;
  /** `options.data.maxEntrySize`. */
  maxEntrySize: number;
  /** Statuses a fetched response must have to be stored (`options.cacheStatuses`); a value must be 200. */
  cacheStatuses: ReadonlySet<number>;
  /** A value (`cache.data.get`) rather than a fetched response. */
  value: boolean;
  /** Newest local deletion covering `key` (epoch ms; 0 when none), see {@link DataDeletions}. */
  deletedAt: number;
  /** True when the entry predates a local invalidation of one of its tags. */
  isInvalidated: (entry: Entry) => boolean;
  /** True when a value's bytes decode as their media type says (not called for fetched responses). */
  decodes: (entry: Entry) => boolean;
}

/**
 * May an entry a peer sent for a data key be used here, and how? Judged by this node's rules,
 * whatever the peer thought: the entry is for the key asked (its `url`), a value is a 200 that
 * decodes and a fetched response has a status this node stores, the body fits
 * `data.maxEntrySize`, it was stored after the newest local deletion of the key (so a deleted
 * key is never brought back from a peer that still holds it) and after any local invalidation
 * of its tags. `'fresh'` before its `staleAt`; `'stale'` inside its stale-while-revalidate window
 * (RFC 5861 §3), where the data cache answers stale and refreshes in the background; undefined
 * (refused) otherwise.
 */
export function judgePeerData(entry: Entry, ctx: PeerDataContext): PeerDataUse | undefined {
  if (entry.url !== ctx.url) return undefined;
  if (ctx.now >= entry.expiresAt || ctx.now >= Math.max(entry.staleAt, entry.swrUntil)) return undefined;
  if (entry.body.length > ctx.maxEntrySize) return undefined;
  if (ctx.value ? entry.status !== 200 : !ctx.cacheStatuses.has(entry.status)) return undefined;
  if (entry.storedAt <= ctx.deletedAt) return undefined;
  if (entry.tags.length > 0 && ctx.isInvalidated(entry)) return undefined;
  if (ctx.value && !ctx.decodes(entry)) return undefined;
  return ctx.now < entry.staleAt ? 'fresh' : 'stale';
}

/**
 * When data keys were deleted on this node (`cache.data.delete`, or dropped because what they
 * read changed), by the names a deletion covers: a data key, `u:<absolute url>` for every set of
 * request headers of a URL, `p:<path>` for a path fetched from any host. Bounded: past `max`
 * names the oldest is forgotten and its time folds into a floor that then applies to every key
 * (a peer copy older than it is refused: conservative, it only costs a local load).
 */
export class DataDeletions {
  readonly #times: LRUCache<string, number>;
  /** Every peer copy stored at or before this is refused (forgotten deletions fold here). */
  #floor = 0;

  constructor(max: number) {
    this.#times = boundedLru<string, number>(max, {
      dispose: (at, _name, reason) => {
        if (reason === 'evict' && at > this.#floor) this.#floor = at;
      },
    });
  }

  /** Records that `name` was deleted at `at` (epoch ms). */
  record(name: string, at: number): void {
    this.#times.set(name, Math.max(at, this.#times.peek(name) ?? 0));
  }

  /** Newest deletion covering any of `names` (epoch ms), or the floor. */
  newest(names: readonly string[]): number {
    let at = this.#floor;
    for (const name of names) {
      const t = this.#times.peek(name);
      if (t !== undefined && t > at) at = t;
    }
    return at;
  }
}
