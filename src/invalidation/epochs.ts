/**
 * Invalidation epochs: invalidation marks entries stale by time instead of touching them, the way
 * the dispatcher touches `.stat` files. A lookup walks the entry's path once (O(depth)) and
 * compares its `storedAt` with the newest invalidation that reaches it; nothing ever scans the
 * cache. An entry stored before the newest invalidation of its own path (or of an ancestor, for a
 * tree invalidation), of one of its tags, or, when its path matches `autoInvalidate`, of its
 * ancestor at or above `statLevel`, is stale.
 */
import createDebug from 'debug';

const debug = createDebug('stratacache:invalidation');

/** How far an invalidation of a path reaches. */
export type InvalidationScope = 'resource' | 'tree';

/** What one invalidation covers. */
export interface EpochInput {
  /** Paths (no host; a query is ignored). */
  paths?: readonly string[];
  /** `'resource'`: only the resource itself, no auto-invalidation (`CQ-Action-Scope: ResourceOnly`). */
  scope?: InvalidationScope;
  /** Entries of these paths and tags are removed, not only made stale. */
  hard?: boolean;
  /** Tags (surrogate keys). */
  tags?: readonly string[];
}

/** Why an entry is invalidated: the newest invalidation reaching it, and whether it removes it. */
export interface EpochVerdict {
  /** When that invalidation happened (epoch ms): the start of its grace period. */
  at: number;
  /** A hard removal: the entry must not be served at all, not even on error. */
  hard: boolean;
}

/** The entry fields the check reads. */
export interface EpochSubject {
  url: string;
  storedAt: number;
  tags: readonly string[];
}

/** Options of {@link Epochs}. */
export interface EpochsOptions {
  /** Depth of the deepest ancestor an invalidation marks for auto-invalidation. */
  statLevel: number;
  /** Which paths are auto-invalidated (undefined: none). */
  autoInvalidate: ((path: string) => boolean) | undefined;
  /** Most epochs kept per map; past it the oldest folds into a floor (conservative). @default 100000 */
  maxEpochs?: number;
}

/**
 * The resource a URL path belongs to: query and trailing slash dropped, selectors and extension
 * cut from the last segment, so `/a/page.model.json` and `/a/page.html` both belong to `/a/page`
 * (as the dispatcher deletes `page.*` for a handle `page`). The root is `''`.
 */
export function resourcePath(url: string): string {
  let end = url.length;
  for (let i = 0; i < url.length; i++) {
    const c = url.charCodeAt(i);
    if (c === 63 /* ? */ || c === 35 /* # */) {
      end = i;
      break;
    }
  }
  let path = url.slice(0, end);
  while (path.length > 0 && path.charCodeAt(path.length - 1) === 47) path = path.slice(0, -1);
  const lastSlash = path.lastIndexOf('/');
  const dot = path.indexOf('.', lastSlash + 1);
  return dot === -1 ? path : path.slice(0, dot);
}

/** The URL's path without query or fragment (what `autoInvalidate` globs match). */
export function urlPath(url: string): string {
  const q = url.search(/[?#]/);
  return q === -1 ? url : url.slice(0, q);
}

/** The ancestor of a resource path `depth` segments deep (`''` for depth 0). */
export function ancestor(path: string, depth: number): string {
  if (depth <= 0) return '';
  let i = 0;
  for (let d = 0; d < depth; d++) {
    const next = path.indexOf('/', i + 1);
    if (next === -1) return path;
    i = next;
  }
  return path.slice(0, i);
}

/** Number of segments of a resource path (`''` is 0). */
export function depthOf(path: string): number {
  let n = 0;
  for (let i = 0; i < path.length; i++) if (path.charCodeAt(i) === 47) n++;
  return n;
}

/** A map of epochs bounded in size; evicting the oldest raises a floor that then applies to all. */
class EpochMap {
  readonly #map = new Map<string, number>();
  readonly #max: number;
  /** Everything stored before this counts as invalidated by this map (evicted epochs fold here). */
  floor = 0;

  constructor(max: number) {
    this.#max = max;
  }

  set(name: string, at: number): void {
    // An epoch only moves forward: a record applied late (a peer's, stamped with its earlier
    // time) must not lower a newer one and so make entries it invalidated valid again.
    const current = this.#map.get(name);
    if (current !== undefined && current >= at) return;
    // Delete first so iteration order stays the order of the latest update: the first key is the oldest.
    this.#map.delete(name);
    this.#map.set(name, at);
    if (this.#map.size > this.#max) {
      const [oldest, t] = this.#map.entries().next().value as [string, number];
      this.#map.delete(oldest);
      if (t > this.floor) this.floor = t;
    }
  }

  get(name: string): number {
    return this.#map.get(name) ?? 0;
  }

  get size(): number {
    return this.#map.size;
  }
}

/** The epochs of one cache. Times are epoch ms given by the caller (no clock inside). */
export class Epochs {
  readonly #statLevel: number;
  readonly #auto: ((path: string) => boolean) | undefined;
  /** Tree invalidations: a path and everything below it. */
  readonly #tree: EpochMap;
  /** Resource-only invalidations: the resource itself. */
  readonly #resource: EpochMap;
  /** Auto-invalidation epochs at stat-level ancestors. */
  readonly #stat: EpochMap;
  readonly #hardTree: EpochMap;
  readonly #hardResource: EpochMap;
  readonly #tags: EpochMap;
  /** Hard tag invalidations: the tagged entries are gone, not only stale. */
  readonly #hardTags: EpochMap;
  #newest = 0;
  #newestTag = 0;

  constructor(options: EpochsOptions) {
    this.#statLevel = options.statLevel;
    this.#auto = options.autoInvalidate;
    const max = options.maxEpochs ?? 100_000;
    this.#tree = new EpochMap(max);
    this.#resource = new EpochMap(max);
    this.#stat = new EpochMap(max);
    this.#hardTree = new EpochMap(max);
    this.#hardResource = new EpochMap(max);
    this.#tags = new EpochMap(max);
    this.#hardTags = new EpochMap(max);
  }

  /**
   * The newest invalidation time (0 when nothing was ever invalidated). An entry stored at or
   * after it cannot be invalidated, so the hit path compares one number and skips the walk.
   */
  get newest(): number {
    return this.#newest;
  }

  /**
   * Whether an invalidation since `startedAt` may cover a render of `url` begun then, whose
   * tags are not known yet: one of its path (or an ancestor, or its stat level), or any tag.
   */
  coversSince(url: string, startedAt: number): boolean {
    if (startedAt >= this.#newest) return false;
    return this.#newestTag > startedAt || this.check({ url, storedAt: startedAt, tags: [] }) !== undefined;
  }

  /** Records one invalidation at `at`. */
  record(input: EpochInput, at: number): void {
    const scope = input.scope ?? 'tree';
    for (const raw of input.paths ?? []) {
      const path = resourcePath(raw);
      if (input.hard) (scope === 'tree' ? this.#hardTree : this.#hardResource).set(path, at);
      (scope === 'tree' ? this.#tree : this.#resource).set(path, at);
      // Auto-invalidation (the dispatcher's .stat files): mark the ancestor at statLevel, or the
      // path itself when it is shallower, so everything auto-invalidated below it goes stale.
      if (scope === 'tree' && this.#auto !== undefined) this.#stat.set(ancestor(path, Math.min(depthOf(path), this.#statLevel)), at);
      debug('invalidate %s (%s%s) at %d', path === '' ? '/' : path, scope, input.hard ? ', hard' : '', at);
    }
    for (const tag of input.tags ?? []) {
      if (input.hard) this.#hardTags.set(tag, at);
      this.#tags.set(tag, at);
    }
    if ((input.tags?.length ?? 0) > 0 && at > this.#newestTag) this.#newestTag = at;
    if (at > this.#newest) this.#newest = at;
  }

  /**
   * The newest invalidation that reaches `entry`, or undefined when none does (the entry is as
   * valid as its own freshness says). O(depth of its path + number of its tags).
   */
  check(entry: EpochSubject): EpochVerdict | undefined {
    const storedAt = entry.storedAt;
    if (storedAt >= this.#newest) return undefined;
    const path = resourcePath(entry.url);
    const auto = this.#auto !== undefined && this.#auto(urlPath(entry.url));
    let soft = Math.max(this.#tree.floor, this.#resource.floor, this.#stat.floor, this.#resource.get(path));
    let hard = Math.max(this.#hardTree.floor, this.#hardResource.floor, this.#hardResource.get(path));
    // Walk the ancestors: '' (root), '/a', '/a/b', ... up to the path itself.
    let depth = 0;
    let i = 0;
    for (;;) {
      const prefix = path.slice(0, i);
      const t = this.#tree.get(prefix);
      if (t > soft) soft = t;
      const h = this.#hardTree.get(prefix);
      if (h > hard) hard = h;
      if (auto && depth <= this.#statLevel) {
        const s = this.#stat.get(prefix);
        if (s > soft) soft = s;
      }
      if (i >= path.length) break;
      const next = path.indexOf('/', i + 1);
      i = next === -1 ? path.length : next;
      depth++;
    }
    if (entry.tags.length > 0) {
      if (this.#tags.floor > soft) soft = this.#tags.floor;
      if (this.#hardTags.floor > hard) hard = this.#hardTags.floor;
      for (const tag of entry.tags) {
        const t = this.#tags.get(tag);
        if (t > soft) soft = t;
        const h = this.#hardTags.get(tag);
        if (h > hard) hard = h;
      }
    }
    // Strictly older than the invalidation: the engine stamps invalidations strictly after every
    // render already started and renders at or after every invalidation already recorded.
    if (hard > storedAt) return { at: hard, hard: true };
    if (soft > storedAt) return { at: soft, hard: false };
    return undefined;
  }

  /** Number of epochs held (for tests and stats). */
  get size(): number {
    return this.#tree.size + this.#resource.size + this.#stat.size + this.#hardTree.size + this.#hardResource.size + this.#tags.size + this.#hardTags.size;
  }
}
