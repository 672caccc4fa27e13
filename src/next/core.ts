/**
 * What both Next.js handlers of one cache share: where Next's entries live (the data cache of a
 * {@link StrataCache}: its memory tier, its lower tiers such as Redis, its peers), how a Next tag
 * becomes a stratacache tag, whether an invalidation reaches an entry, and Next's revalidations
 * turned into stratacache invalidations (so they travel to every node through the Redis stream or
 * the peers, like any other).
 */
import createDebug from 'debug';
import type { StrataCache } from '../cache.js';
import { newEntry } from '../data/entries.js';
import { BINARY_TYPE } from '../data/serialize.js';
import type { Entry } from '../entry.js';

const debug = createDebug('stratacache:next');

/** Where Next's entries live among the data keys: a value key (`v:`), so the peers carry them. */
const NAMESPACE = '@next/';
const VALUE = 'v:';

/** How long an entry whose lifetime Next leaves open (`revalidate: false`, no `expire`) is kept: Next's default `expireTime`, a year. */
export const LONGEST_LIFETIME = 365 * 24 * 3600 * 1000;

/** Next's revalidation durations (`revalidateTag(tag, profile)`: the profile's `expire` in seconds). */
export interface NextDurations {
  expire?: number;
}

/** How far an invalidation reaches an entry: `'hard'` (gone) or `'soft'` (stale, serve while renewing). */
export type Reach = 'hard' | 'soft' | undefined;

/**
 * A Next tag as a stratacache tag: white space (which a stratacache tag cannot hold) is
 * percent-encoded, the same way for an entry's tags and for a revalidation, so they still meet.
 */
export function tagOf(tag: string): string {
  return tag.replace(/\s/g, (c) => encodeURIComponent(c));
}

/** The parts of one cache both handlers use; one per cache ({@link coreOf}). */
export class NextCore {
  readonly cache: StrataCache;
  /** The response header the cache reads tags from (`tagHeader`): pages carry their Next tags in it. */
  readonly tagHeader: string;
  /** Revalidations asked for in this turn of the event loop, applied together (see {@link revalidate}). */
  #batch: { hard: Set<string>; soft: Set<string>; done: Promise<void> } | undefined;

  constructor(cache: StrataCache) {
    this.cache = cache;
    this.tagHeader = cache.engine.options.tagHeader;
  }

  /** The entry stored under Next's `key` on this node, in a lower tier or on a peer; never throws. */
  find(key: string): Promise<Entry | undefined> {
    return this.cache.data.peek(VALUE + NAMESPACE + key);
  }

  /** Stores an entry built by {@link entry} under Next's `key`. */
  keep(key: string, entry: Entry): void {
    this.cache.data.keep(VALUE + NAMESPACE + key, entry);
  }

  /**
   * An entry for Next's `key`: `body` as it is (with `meta` as a header), kept for `lifetime` ms,
   * created at `createdAt` (epoch ms: what invalidations compare with), with these Next tags.
   */
  entry(key: string, what: { body: Buffer; meta: unknown; tags: readonly string[]; createdAt: number; lifetime: number }): Entry {
    const now = Date.now();
    const until = now + Math.max(1, Math.min(what.lifetime, LONGEST_LIFETIME));
    return newEntry(
      { status: 200, headers: [['content-type', BINARY_TYPE], ['x-next-meta', JSON.stringify(what.meta)]], body: what.body, url: NAMESPACE + key, tags: what.tags.map(tagOf) },
      { now, storedAt: what.createdAt, staleAt: until, swrUntil: until, sieUntil: until },
    );
  }

  /** The metadata {@link entry} stored beside the body. */
  meta<T>(entry: Entry): T | undefined {
    const raw = entry.headers.find(([name]) => name === 'x-next-meta')?.[1];
    if (raw === undefined) return undefined;
    try {
      return JSON.parse(raw) as T;
    } catch {
      return undefined;
    }
  }

  /**
   * Whether an invalidation applied on this node (from any node) reaches `entry`: one of its
   * tags or of `extra.tags` (Next's soft tags of the page asking), or, with `extra.path`, that
   * path (a page's own URL path, so `cache.invalidate('/blog')` reaches Next's copy of /blog).
   */
  reach(entry: Entry, extra: { tags?: readonly string[]; path?: string } = {}): Reach {
    const tags = extra.tags === undefined || extra.tags.length === 0 ? entry.tags : [...entry.tags, ...extra.tags.map(tagOf)];
    const subject = tags === entry.tags && extra.path === undefined ? entry : { ...entry, tags, url: extra.path ?? entry.url };
    const verdict = this.cache.engine.invalidation.verdict(subject);
    return verdict === undefined ? undefined : verdict.hard ? 'hard' : 'soft';
  }

  /** The creation time for an entry stored now: never before an invalidation already applied here. */
  renderTime(): number {
    return this.cache.engine.invalidation.renderTime();
  }

  /**
   * Next revalidated `tags` (revalidateTag, revalidatePath's implicit tag, updateTag): an
   * invalidation of these tags on this cache, so on every node it shares invalidations with.
   * Without durations, or with `expire: 0`, the entries are gone (hard: the next request renders);
   * with a profile's `expire`, they turn stale (soft: served while one render renews them).
   * Next calls every handler for one revalidation (`cacheHandler` and each `cacheHandlers`
   * entry); the calls made in one turn of the event loop become one invalidation per kind.
   */
  revalidate(tags: string | readonly string[], durations?: NextDurations): Promise<void> {
    const list = (typeof tags === 'string' ? [tags] : tags).filter((t) => typeof t === 'string' && t !== '').map(tagOf);
    if (list.length === 0) return Promise.resolve();
    const hard = durations === undefined || durations.expire === 0;
    let batch = this.#batch;
    if (batch === undefined) {
      const fresh = { hard: new Set<string>(), soft: new Set<string>(), done: Promise.resolve() };
      fresh.done = new Promise<void>((resolve, reject) =>
        setImmediate(() => {
          this.#batch = undefined;
          try {
            this.#apply(fresh.hard, fresh.soft);
            resolve();
          } catch (error) {
            // Reaches every caller of the batch (Next reports a failed revalidation), not the process.
            reject(error as Error);
          }
        }),
      );
      batch = this.#batch = fresh;
    }
    for (const tag of list) batch[hard ? 'hard' : 'soft'].add(tag);
    return batch.done;
  }

  #apply(hard: Set<string>, soft: Set<string>): void {
    const invalidation = this.cache.engine.invalidation;
    for (const tag of hard) soft.delete(tag);
    if (hard.size > 0) invalidation.invalidate({ tags: [...hard], hard: true });
    if (soft.size > 0) invalidation.invalidate({ tags: [...soft] });
    debug('revalidated: hard %s, soft %s', [...hard].join(' '), [...soft].join(' '));
  }
}

const cores = new WeakMap<StrataCache, NextCore>();

/** The one {@link NextCore} of `cache` (both handlers of one cache share its revalidation batch). */
export function coreOf(cache: StrataCache): NextCore {
  let core = cores.get(cache);
  if (core === undefined) cores.set(cache, (core = new NextCore(cache)));
  return core;
}
