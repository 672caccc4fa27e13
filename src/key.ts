/**
 * Request -> cache key: host policy, path, query sorted with ignored parameters removed, extra
 * keyed headers; and the secondary (variant) key from the request headers a response's `Vary` names.
 */
import type { IncomingMessage } from 'node:http';
import type { ResolvedOptions } from './options/types.js';

/** Separates the parts of a key; cannot occur in a request target or a header value. */
const SEP = '\n';

/**
 * Lower-cases a Host header, drops the scheme's default port and the trailing dot of a fully
 * qualified name (`SITE.TEST`, `site.test:80` and `site.test.` are all `site.test`: RFC 9110
 * §4.2.3 makes them one origin, and a DNS name is the same with or without its root dot).
 */
export function normalizeHost(host: string | undefined, encrypted: boolean): string {
  if (host === undefined) return '';
  let lower = host.toLowerCase();
  if (encrypted ? lower.endsWith(':443') : lower.endsWith(':80')) lower = lower.slice(0, lower.lastIndexOf(':'));
  if (lower.endsWith('.')) return lower.slice(0, -1);
  // `site.test.:8080` (an IPv6 literal never has a '.' before a ':').
  return lower.includes('.:') ? lower.replace('.:', ':') : lower;
}

/**
 * Normalizes a request target: origin-form path and a query sorted by name (stable, so repeated
 * names keep their order) with ignored parameters removed. Returns undefined for targets that
 * cannot be cached (`*`, empty).
 */
export function normalizeTarget(target: string, ignore: ((name: string) => boolean) | undefined): string | undefined {
  let path = target;
  if (path.charCodeAt(0) !== 47 /* / */) {
    // absolute-form (RFC 9112 §3.2.2), as a forward proxy would receive it
    if (!/^https?:\/\//i.test(path)) return undefined;
    try {
      const u = new URL(path);
      path = u.pathname + u.search;
    } catch {
      return undefined;
    }
  }
  const hash = path.indexOf('#');
  if (hash !== -1) path = path.slice(0, hash);
  const q = path.indexOf('?');
  if (q === -1) return path;
  const params = new URLSearchParams(path.slice(q + 1));
  const kept: Array<[string, string]> = [];
  for (const [name, value] of params) if (ignore === undefined || !ignore(name)) kept.push([name, value]);
  if (kept.length === 0) return path.slice(0, q);
  kept.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return `${path.slice(0, q)}?${new URLSearchParams(kept).toString()}`;
}

/** The host part of a key under the configured policy. */
export function hostPart(req: IncomingMessage, options: ResolvedOptions): string {
  const policy = options.keyHost;
  if (policy === 'header') return normalizeHost(req.headers.host, (req.socket as { encrypted?: boolean } | null)?.encrypted === true);
  return policy === false ? '' : policy;
}

/**
 * The primary key of a request, or undefined when the request target cannot be cached. `target`
 * keys another URL of the same request (its host and keyed headers), as an unsafe method's
 * `Location` is invalidated (RFC 9111 §4.4).
 */
export function primaryKey(req: IncomingMessage, options: ResolvedOptions, target?: string): string | undefined {
  if (options.keyFunction !== undefined) {
    if (target === undefined) return options.keyFunction(req);
    const saved = req.url;
    req.url = target;
    try {
      return options.keyFunction(req);
    } finally {
      req.url = saved;
    }
  }
  const url = target ?? req.url ?? '';
  // Fast path: no query, no fragment, origin-form.
  const plain = url.charCodeAt(0) === 47 && url.indexOf('?') === -1 && url.indexOf('#') === -1;
  if (plain && options.keyHeaders.length === 0 && url.length <= MEMO_MAX_URL) return memoKey(req, options, url);
  const normalized = plain ? url : normalizeTarget(url, options.ignoreParam);
  if (normalized === undefined) return undefined;
  let key = hostPart(req, options) + normalized;
  for (const name of options.keyHeaders) key += `${SEP}${name}:${headerValue(req.headers[name])}`;
  return key;
}

/** One remembered key: the inputs it was built from, and the key. */
interface MemoSlot {
  /** `options.keyHost` of the cache that built the key: with no key function and no keyed headers, the only option a plain key depends on. */
  policy: ResolvedOptions['keyHost'] | undefined;
  host: string | undefined;
  encrypted: boolean;
  url: string;
  key: string;
}

/** Slots of the key memo (a power of two), and the longest target it remembers (bounds what it retains). */
const MEMO_SLOTS = 64;
const MEMO_MAX_URL = 256;

/**
 * Recently built keys of plain targets (origin-form, no query, no keyed headers), in slots
 * chosen by the target's length and two of its characters. A hit returns the very string
 * built before: the memory tier's Map then finds it by the hash the string already carries,
 * where a key built again is a new string whose hash is computed (with host normalization and
 * the concatenation before it, the largest part of a hit's own cost). A slot is reused only
 * when the host policy, Host, TLS and target are all equal, so the key is the one built from scratch.
 */
const memo: MemoSlot[] = Array.from({ length: MEMO_SLOTS }, () => ({ policy: undefined, host: undefined, encrypted: false, url: '', key: '' }));

function memoKey(req: IncomingMessage, options: ResolvedOptions, url: string): string {
  const host = req.headers.host;
  const encrypted = (req.socket as { encrypted?: boolean } | null)?.encrypted === true;
  const n = url.length;
  const slot = memo[(n + 7 * url.charCodeAt(n - 1) + 31 * url.charCodeAt(n >> 1)) & (MEMO_SLOTS - 1)]!;
  if (slot.policy === options.keyHost && slot.url === url && slot.host === host && slot.encrypted === encrypted) return slot.key;
  const key = hostPart(req, options) + url;
  slot.policy = options.keyHost;
  slot.host = host;
  slot.encrypted = encrypted;
  slot.url = url;
  slot.key = key;
  return key;
}

function headerValue(v: string | string[] | undefined): string {
  if (v === undefined) return '';
  return (Array.isArray(v) ? v.join(',') : v).trim().replace(/\s+/g, ' ');
}

/**
 * The variant key under a primary key for the request header values a `Vary` names. With
 * `acceptEncoding` (the coding a response is sent in, see engine/encoding-keys.ts), that token
 * stands for the `Accept-Encoding` value.
 */
export function variantKey(primary: string, vary: readonly string[], headers: IncomingMessage['headers'], acceptEncoding?: string): string {
  if (vary.length === 0) return primary;
  let key = primary + SEP + 'vary';
  for (const name of vary) key += `${SEP}${name}:${acceptEncoding !== undefined && name === 'accept-encoding' ? acceptEncoding : headerValue(headers[name])}`;
  return key;
}
