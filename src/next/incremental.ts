/**
 * Next's `cacheHandler`: the incremental cache of ISR pages, route handlers and the fetch cache,
 * kept in a stratacache data cache. An entry carries Next's tags (a page's `x-next-cache-tags`,
 * a fetch's tags) as stratacache tags, so `revalidateTag` / `revalidatePath` on any node and
 * `cache.invalidateTags` / `stratacache flush --tag` reach it alike. A page handed back to Next
 * carries its tags in the cache's `tagHeader` and its `Age`, so a `cache.wrap` in front of the
 * same app stores it under the same tags and no fresher than Next's own copy.
 */
import createDebug from 'debug';
import { decodeValue, encodeValue } from './codec.js';
import { LONGEST_LIFETIME, tagOf, type NextCore, type NextDurations } from './core.js';
import type { NextCacheControl, NextCacheHandlerValue, NextGetContext, NextIncrementalValue, NextSetContext } from './types.js';

const debug = createDebug('stratacache:next');

/** Response kinds whose value carries headers (and so tags) of a page or route. */
const RESPONSES = new Set(['APP_PAGE', 'APP_ROUTE', 'PAGES']);

/** What is stored for one key: Next's value and the lifetime it was stored with. */
interface Stored {
  v: NextIncrementalValue | null;
  c?: NextCacheControl;
}

/** A route cache key (`/route-cache/<kind>/<hash>/$<page path>`) -> the page's URL path. */
export function pathOfKey(key: string): string | undefined {
  const m = /^\/route-cache\/[^/]+\/[^/]+\/\$(\/.*)$/.exec(key);
  if (m === null) return undefined;
  const page = m[1]!;
  return page === '/index' ? '/' : page;
}

/** Next's tags of a value: a page's or route's `x-next-cache-tags`, a fetch's own. */
function tagsOf(value: NextIncrementalValue | null, ctx: NextSetContext): string[] {
  if (value === null) return [];
  if (value.kind === 'FETCH') return [...(ctx.tags ?? value.tags ?? [])];
  const header = value.headers?.['x-next-cache-tags'];
  return typeof header === 'string' && header !== '' ? header.split(',') : [];
}

/** The incremental cache of one stratacache: what each instance of the handler class calls. */
export class IncrementalStore {
  readonly #core: NextCore;

  constructor(core: NextCore) {
    this.#core = core;
  }

  /**
   * The stored value, or null. An entry a hard invalidation reached is a miss (Next renders it
   * before answering); one a soft invalidation reached is handed back as past its `revalidate`
   * (Next answers it and renders a new one in the background), or as a miss when it has no
   * `revalidate` to be past.
   */
  async get(key: string, ctx: NextGetContext): Promise<NextCacheHandlerValue | null> {
    const core = this.#core;
    const entry = await core.find(key);
    if (entry === undefined) return null;
    let stored: Stored;
    try {
      stored = decodeValue(entry.body) as Stored;
    } catch (error) {
      debug('undecodable entry under %s: %s', key, (error as Error).message);
      return null;
    }
    const value = stored.v;
    const fetch = ctx.kind === 'FETCH';
    const reach = core.reach(entry, { tags: fetch ? [...(ctx.tags ?? []), ...(ctx.softTags ?? [])] : undefined, path: pathOfKey(key) });
    if (reach === 'hard') {
      debug('get %s: invalidated (hard)', key);
      return null;
    }
    let lastModified = Math.floor(entry.storedAt);
    if (reach === 'soft') {
      const revalidate = fetch ? ctx.revalidate || value?.revalidate : stored.c?.revalidate;
      if (typeof revalidate !== 'number' || revalidate <= 0) return null;
      // Just past its revalidate time: Next serves it once more and renders a new one.
      lastModified = Math.min(lastModified, Date.now() - revalidate * 1000 - 1);
      debug('get %s: invalidated (soft), stale', key);
    }
    const answer: NextCacheHandlerValue = { lastModified, value: value === null ? null : this.#withHeaders(value, entry.tags, lastModified) };
    if (stored.c !== undefined) answer.cacheControl = stored.c;
    return answer;
  }

  /** Stores Next's value with its tags, for as long as its `expire` (or a year). */
  async set(key: string, data: NextIncrementalValue | null, ctx: NextSetContext): Promise<void> {
    const core = this.#core;
    const cacheControl = ctx.fetchCache === true ? undefined : ctx.cacheControl;
    const stored: Stored = cacheControl === undefined ? { v: data } : { v: data, c: cacheControl };
    const expire = cacheControl?.expire;
    const lifetime = typeof expire === 'number' && expire > 0 ? expire * 1000 : LONGEST_LIFETIME;
    const tags = tagsOf(data, ctx);
    // Next sends a page it just rendered with this same headers object (set is awaited before the
    // response is written): tagged here, a `cache.wrap` in front stores that response under the
    // page's tags too (a page it gets back from `get` is tagged there).
    if (data !== null && RESPONSES.has(data.kind) && data.headers !== undefined && tags.length > 0) data.headers[this.#core.tagHeader] = tags.map(tagOf).join(' ');
    core.keep(key, core.entry(key, { body: encodeValue(stored), meta: { kind: data?.kind ?? null }, tags, createdAt: core.renderTime(), lifetime }));
    debug('set %s (%s)', key, data?.kind ?? 'null');
  }

  /** Next revalidated tags: see {@link NextCore.revalidate}. */
  revalidateTag(tags: string | string[], durations?: NextDurations): Promise<void> {
    return this.#core.revalidate(tags, durations);
  }

  /**
   * A page or route handed to Next with its tags in the cache's `tagHeader` and its `Age`: Next
   * sends a cached value's headers, so a `cache.wrap` in front stores the page under the same
   * tags, and as old as Next's copy (RFC 9111 §5.1).
   */
  #withHeaders(value: NextIncrementalValue, tags: readonly string[], lastModified: number): NextIncrementalValue {
    if (!RESPONSES.has(value.kind)) return value;
    const headers = { ...value.headers };
    if (tags.length > 0) headers[this.#core.tagHeader] = tags.join(' ');
    headers.age = String(Math.max(0, Math.floor((Date.now() - lastModified) / 1000)));
    return { ...value, headers };
  }
}
