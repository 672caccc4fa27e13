/**
 * The tags this cache gives the CDN, and the tags a purge names: one vocabulary for both sides,
 * so a purge reaches exactly what the header marked. A stored response carries, in the
 * provider's header: a tree tag for its resource path and each ancestor (a tree invalidation of
 * `/a` purges the tag of `/a`; the root's tag is a flush), a resource tag (a resource-only
 * invalidation), stat-level tags for auto-invalidated paths (the same rule as
 * `invalidation/epochs.ts`), the entry's own tags, and a tag per data key it read. Path and data
 * tags are hashed (short, valid everywhere); an entry's own tag is sent as written when every
 * provider accepts it, else hashed. Bounded by the provider's documented limits.
 */
import { createHash } from 'node:crypto';
import type { Entry } from '../entry.js';
import { ancestor, depthOf, resourcePath, urlPath } from '../invalidation/epochs.js';
import type { CdnProvider } from './options.js';

/** A provider's documented limits on tags, and its purge batch size. */
export interface TagLimits {
  /** Longest tag, in characters. */
  tagLength: number;
  /** Most tags per response. */
  count: number;
  /** Longest header value, in bytes. */
  headerBytes: number;
  /** Between tags in the header. */
  separator: string;
  /** Most tags per purge request. */
  batch: number;
}

/**
 * Fastly: surrogate keys up to 1024 bytes, the Surrogate-Key header up to 16 384 bytes, space
 * separated; a batch purge takes up to 256 keys. Cloudflare: Cache-Tag comma separated, tags up
 * to 1024 characters, 16 KB of header; 30 tags per purge call (the lowest plan limit). Akamai:
 * Edge-Cache-Tag comma separated, tags up to 128 characters, 128 tags per object (more are
 * ignored); a Fast Purge body stays far under its 50 000-byte limit at 200 tags.
 */
export const TAG_LIMITS: Readonly<Record<CdnProvider, TagLimits>> = Object.freeze({
  fastly: { tagLength: 1024, count: 1000, headerBytes: 16_384, separator: ' ', batch: 256 },
  cloudflare: { tagLength: 1024, count: 1000, headerBytes: 16_384, separator: ',', batch: 30 },
  akamai: { tagLength: 128, count: 128, headerBytes: 16_384, separator: ',', batch: 200 },
  header: { tagLength: 1024, count: 1000, headerBytes: 16_384, separator: ' ', batch: 256 },
});

/** Most data-key tags per response (the rest are left out: their change still purges the page's resource tag). */
export const MAX_DATA_TAGS = 32;

/** Characters every provider accepts in a tag (Akamai's set is the narrowest). */
const SAFE = /^[A-Za-z0-9!#$%&'+./^_`|~-]+$/;

/** A tag this cache derived (hashed): never an origin's own. */
const OURS = /^sc[trsdh][0-9a-f]{20}$/;

const hashed = (kind: string, value: string): string => `sc${kind}${createHash('sha256').update(value).digest('hex').slice(0, 20)}`;

/** The tag a purge of path `prefix` (a resource path, `''` for the root) and everything under it names. */
export const treeTag = (prefix: string): string => hashed('t', prefix);
/** The tag of one resource path only. */
export const resourceTag = (path: string): string => hashed('r', path);
/** The tag of a stat-level ancestor (auto-invalidation). */
export const statTag = (prefix: string): string => hashed('s', prefix);
/** The tag of a data-cache key. */
export const dataTag = (key: string): string => hashed('d', key);

/** An entry's own tag as the CDN gets it: as written when valid everywhere, else hashed. */
export function ownTag(tag: string, limits: TagLimits): string {
  return tag.length <= limits.tagLength && SAFE.test(tag) && !tag.startsWith('sc') ? tag : hashed('h', tag);
}

/** How paths map to tags: the stat level and the auto-invalidation predicate of the epochs. */
export interface PathTagging {
  statLevel: number;
  autoInvalidate: ((path: string) => boolean) | undefined;
}

/** The tags of an entry, most important first (the path tags a flush needs, then its own, then its data). */
export function entryTags(entry: Pick<Entry, 'url' | 'tags' | 'deps'>, limits: TagLimits, paths: PathTagging): string[] {
  const path = resourcePath(entry.url);
  const out = [treeTag('')];
  for (let i = path.indexOf('/', 1); ; i = path.indexOf('/', i + 1)) {
    const prefix = i === -1 ? path : path.slice(0, i);
    if (prefix !== '') out.push(treeTag(prefix));
    if (i === -1) break;
  }
  out.push(resourceTag(path));
  if (paths.autoInvalidate?.(urlPath(entry.url)) === true) {
    for (let d = 0; d <= Math.min(paths.statLevel, depthOf(path)); d++) out.push(statTag(ancestor(path, d)));
  }
  for (const t of entry.tags) out.push(ownTag(t, limits));
  for (const k of (entry.deps ?? []).slice(0, MAX_DATA_TAGS)) out.push(dataTag(k));
  return bounded([...new Set(out)], limits);
}

/** The first tags that fit the provider's count and header size. */
function bounded(tags: string[], limits: TagLimits): string[] {
  const out: string[] = [];
  let bytes = 0;
  for (const t of tags) {
    const add = Buffer.byteLength(t) + (out.length === 0 ? 0 : limits.separator.length);
    if (out.length >= limits.count || bytes + add > limits.headerBytes) break;
    out.push(t);
    bytes += add;
  }
  return out;
}

/** What an invalidation names, as the tags to purge. */
export function purgeTags(record: { paths: readonly string[]; scope: 'tree' | 'resource'; tags: readonly string[] }, limits: TagLimits, paths: PathTagging): string[] {
  const out: string[] = [];
  for (const raw of record.paths) {
    const path = resourcePath(raw);
    if (record.scope === 'resource') {
      out.push(resourceTag(path));
      continue;
    }
    out.push(treeTag(path));
    // Auto-invalidation reaches up to the stat-level ancestor, as the epochs record it.
    if (paths.autoInvalidate !== undefined) out.push(statTag(ancestor(path, Math.min(depthOf(path), paths.statLevel))));
  }
  for (const t of record.tags) out.push(ownTag(t, limits));
  return [...new Set(out)];
}

/**
 * Writes the entry's tags into `header` (replacing a header of that name the origin sent: its
 * tags are among the entry's own), in place.
 */
export function tagHeaderWriter(header: string, limits: TagLimits, paths: PathTagging): (entry: Entry) => void {
  return (entry) => {
    // Tags the origin itself sent in this header stay (this cache's own, from an earlier store, are recomputed).
    const sent = entry.headers.filter(([name]) => name === header).flatMap(([, v]) => v.split(/[\s,]+/));
    const origin = sent.filter((t) => t !== '' && !OURS.test(t) && !entry.tags.includes(t));
    const value = entryTags(origin.length === 0 ? entry : { ...entry, tags: [...entry.tags, ...origin] }, limits, paths).join(limits.separator);
    entry.headers = [...entry.headers.filter(([name]) => name !== header), [header, value]];
  };
}
