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
  /** Whether the host is part of the key (otherwise one render serves every host). */
  keyedByHost: boolean;
}

/** Resolves refetch URIs to the hosts and primary keys they are cached under. */
export class TargetIndex {
  /** Hosts by target: one host as itself (no list per target: most targets have one). */
  readonly #hosts = boundedLru<string, string | string[]>(100_000);
  readonly #ctx: TargetContext;

  constructor(context: TargetContext) {
    this.#ctx = context;
  }

  /** Notes the host a stored entry was cached under (at most 8 hosts per target). */
  remember(entry: Entry): void {
    if (!this.#ctx.keyedByHost) return;
    const target = this.#ctx.normalize(entry.url);
    if (target === undefined) return;
    const hosts = this.#hosts.get(target);
    if (hosts === undefined) this.#hosts.set(target, entry.host);
    else if (typeof hosts === 'string') {
      if (hosts !== entry.host) this.#hosts.set(target, [hosts, entry.host]);
    } else if (!hosts.includes(entry.host) && hosts.length < 8) hosts.push(entry.host);
  }

  /**
   * An absolute URL names its host; a path is resolved to every host it was stored under, or
   * `fallbackHost` when none is known. Duplicates (same primary key) are dropped.
   */
  resolve(urls: readonly string[], fallbackHost: string): RefetchTarget[] {
    const out: RefetchTarget[] = [];
    const seen = new Set<string>();
    for (const raw of urls) {
      let url = raw;
      let hosts: string[];
      if (/^https?:\/\//i.test(raw)) {
        const u = new URL(raw);
        url = u.pathname + u.search;
        hosts = [u.host];
      } else {
        const target = this.#ctx.normalize(url);
        const known = target === undefined ? undefined : this.#hosts.get(target);
        hosts = known === undefined ? [fallbackHost] : typeof known === 'string' ? [known] : known;
      }
      for (const host of hosts) {
        const primary = this.#ctx.primaryOf(url, host);
        if (primary === undefined || seen.has(primary)) continue;
        seen.add(primary);
        out.push({ url, host, primary });
      }
    }
    return out;
  }
}
