/**
 * Where a refetch or prime URI is cached: a flush agent names paths without a host, while
 * entries are keyed by host. A bounded index remembers the hosts each stored target was cached
 * under, so a host-less URI is refetched for each of them. Also the validation of paths, URIs
 * and tag header values shared by the API and the flush endpoint.
 */
import { boundedLru } from '../lru.js';
import type { Entry } from '../entry.js';
import type { RefetchTarget } from './refetch.js';

/** A request target an invalidation or refetch may name: origin-form, or absolute http(s). */
const TARGET = /^(?:\/|https?:\/\/[^/\s]+\/)[^\s\u0000-\u001f\u007f]*$/i;

/** True for a path starting with '/' or an absolute http(s) URL, without spaces or control characters. */
export function isTarget(value: unknown): value is string {
  return typeof value === 'string' && TARGET.test(value);
}

/**
 * Validates an invalidation path or refetch URI.
 * @throws TypeError naming `name` and the value.
 */
export function targetOption(value: unknown, name: string): string {
  if (!isTarget(value)) throw new TypeError(`expected ${name} to be a path starting with '/' or an http(s) URL, got ${JSON.stringify(value)}`);
  return value;
}

/** True for a tag an invalidation may name: a non-empty string without white space. */
export function isTag(value: unknown): value is string {
  return typeof value === 'string' && value !== '' && !/\s/.test(value);
}

/**
 * Validates an invalidation tag.
 * @throws TypeError naming `name` and the value.
 */
export function tagOption(value: unknown, name: string): string {
  if (!isTag(value)) throw new TypeError(`expected ${name} to be a non-empty string without spaces, got ${JSON.stringify(value)}`);
  return value;
}

/** Tags from the tag header: space-separated, at most 64 of at most 256 characters each. */
export function tagsOf(value: unknown): string[] {
  if (value === undefined) return [];
  const joined = Array.isArray(value) ? value.join(' ') : String(value);
  return joined
    .split(/\s+/)
    .filter((t) => t !== '' && t.length <= 256)
    .slice(0, 64);
}

/** What the index needs from the engine. */
export interface TargetContext {
  /** Normalised target (path and sorted query) of a URL, or undefined when uncacheable. */
  normalize(url: string): string | undefined;
  /** Primary key a render of `url` on `host` fills, or undefined. */
  primaryOf(url: string, host: string): string | undefined;
  /**
   * Whether the response cache's memory tier still holds something under a primary key (the
   * entry itself or, for a page that varies, its list of variants). Synchronous; asked once per
   * host-less refetch path, never per stored entry.
   */
  holds(primary: string): boolean;
  /** Whether the host is part of the key (otherwise one render serves every host). */
  keyedByHost: boolean;
}

/** Most hosts one target is resolved to (the site's host included). */
const MAX_HOSTS = 8;

/**
 * Resolves refetch URIs to the hosts and primary keys they are cached under.
 *
 * A site is usually served under one host, so the index costs nothing per entry stored under it:
 * the first host an entry is stored under becomes the site's host, and a path counts as cached
 * under it while the memory tier holds its primary key for that host (asked at resolve time).
 * Only entries stored under any other host are remembered, per target: at most
 * {@link MAX_HOSTS} - 1 hosts each, for the 100,000 most recently stored targets.
 */
export class TargetIndex {
  /** The first host an entry was stored under (undefined until then, or when the key has no host). */
  #site: string | undefined;
  /** Other hosts by target: one host as itself (no list per target: most targets have one). */
  readonly #hosts = boundedLru<string, string | string[]>(100_000);
  readonly #ctx: TargetContext;

  constructor(context: TargetContext) {
    this.#ctx = context;
  }

  /** Notes the host a stored entry was cached under, unless it is the site's host. */
  remember(entry: Entry): void {
    if (!this.#ctx.keyedByHost) return;
    const host = entry.host;
    if (host === (this.#site ??= host)) return;
    const target = this.#ctx.normalize(entry.url);
    if (target === undefined) return;
    const hosts = this.#hosts.get(target);
    if (hosts === undefined) this.#hosts.set(target, host);
    else if (typeof hosts === 'string') {
      if (hosts !== host) this.#hosts.set(target, [hosts, host]);
    } else if (!hosts.includes(host) && hosts.length < MAX_HOSTS - 1) hosts.push(host);
  }

  /**
   * An absolute URL names its host. A path is resolved to the hosts it is known to be cached
   * under: the site's host first when the memory tier holds the path's primary key under it,
   * then the other hosts it was stored under (in the order they were first seen). When none is
   * known (never stored, or stored under the site's host only and since evicted from memory) it
   * is `fallbackHost` (the site's host when that is `''`: a refetch asked for by the API names
   * none), so a flush whose host is the site's resolves exactly as if every entry were
   * remembered. Duplicates (same primary key) are dropped.
   */
  resolve(urls: readonly string[], fallbackHost: string): RefetchTarget[] {
    const out: RefetchTarget[] = [];
    const seen = new Set<string>();
    const add = (url: string, host: string, primary = this.#ctx.primaryOf(url, host)): void => {
      if (primary === undefined || seen.has(primary)) return;
      seen.add(primary);
      out.push({ url, host, primary });
    };
    for (const raw of urls) {
      if (/^https?:\/\//i.test(raw)) {
        const u = new URL(raw);
        add(u.pathname + u.search, u.host);
        continue;
      }
      const known = this.#known(raw);
      // No host given (an API refetch): the site's is the best guess, and the one its lower tiers hold.
      if (known.length === 0) add(raw, fallbackHost === '' ? (this.#site ?? '') : fallbackHost);
      for (const [host, primary] of known) add(raw, host, primary);
    }
    return out;
  }

  /** The hosts `path` is known to be cached under, the site's with its primary key. */
  #known(path: string): Array<[host: string, primary?: string]> {
    const site = this.#site;
    if (site === undefined) return [];
    const known: Array<[host: string, primary?: string]> = [];
    const primary = this.#ctx.primaryOf(path, site);
    if (primary !== undefined && this.#ctx.holds(primary)) known.push([site, primary]);
    const target = this.#hosts.size === 0 ? undefined : this.#ctx.normalize(path);
    const others = target === undefined ? undefined : this.#hosts.get(target);
    if (typeof others === 'string') known.push([others]);
    else if (others !== undefined) for (const host of others) known.push([host]);
    return known;
  }
}
