/**
 * Request preparation: puts a request in the one form its cache key describes, so that what a
 * render sees and what the key says always agree (no client can make the handler render for one
 * key what is stored under another). Three steps:
 *
 * - {@link adoptAbsoluteForm}, on every request: an absolute-form target (`GET http://a/x`) is
 *   rewritten to origin-form (`/x`) with `Host: a` (RFC 9112 §3.2.2: the target's authority
 *   wins over Host).
 * - {@link refusal}, on GET/HEAD before keying: a Host that is not an RFC 3986 authority, or a
 *   request with a body, is never keyed (the caller passes it to the handler, nothing stored).
 * - {@link alignWithKey}, before a render whose response will be stored: the handler sees the
 *   normalized target the key was built from (sorted query, ignored parameters removed, one
 *   percent-encoding) and the Host the key names (normalized, or a fixed `key.host`).
 */
import type { IncomingMessage } from 'node:http';
import { hostPart, normalizeTarget } from './key.js';
import type { ResolvedOptions } from './options/types.js';

/**
 * Rewrites an absolute-form target to origin-form and sets `Host` to its authority (RFC 9112
 * §3.2.2), on `headers` and `rawHeaders` both. Returns false, changing nothing, when the target
 * is absolute-form but not a usable http(s) URL (bad authority, userinfo: RFC 9110 §4.2.4);
 * true otherwise (origin-form and `*` targets are left as they are).
 */
export function adoptAbsoluteForm(req: IncomingMessage): boolean {
  const target = req.url ?? '';
  const first = target.charCodeAt(0);
  if (first === 47 /* / */ || first === 42 /* * */ || target === '') return true;
  if (!/^https?:\/\//i.test(target)) return false;
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    return false;
  }
  if (url.username !== '' || url.password !== '' || !isValidHost(url.host)) return false;
  const before = req.url;
  req.url = url.pathname + url.search;
  followRewrite(req, before);
  setHost(req, url.host);
  return true;
}

/**
 * The Host {@link refusal} last found valid: a server sees few distinct hosts, so most requests
 * compare one string instead of scanning it character by character.
 */
let lastValidHost = '';

/**
 * Why a GET/HEAD request must not be keyed, or undefined when it may be:
 * - `invalid host`: the Host is not `host [ ":" port ]` of RFC 3986 §3.2.2 (reg-name or
 *   IP-literal), e.g. `site/a`, so host and path can never be joined ambiguously in a key;
 * - `request body`: a GET or HEAD carrying a body (Content-Length > 0 or Transfer-Encoding):
 *   the response could depend on a body no other client sends (RFC 9110 §9.3.1: no defined
 *   semantics), so it is passed to the handler and never stored.
 */
export function refusal(req: IncomingMessage): string | undefined {
  const host = req.headers.host;
  if (host !== undefined && host !== lastValidHost) {
    if (!isValidHost(host)) return 'invalid host';
    lastValidHost = host;
  }
  const length = req.headers['content-length'];
  if (req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')) return 'request body';
  return undefined;
}

/**
 * Before a render whose response will be stored: rewrites `req.url` to the normalized target its
 * key was built from (sorted query, `ignoreUrlParams` removed, one percent-encoding form), so a
 * handler reflecting the raw query renders exactly what every request sharing the key would get;
 * and sets `Host` to the one the key names: the header normalized by `normalizeHost` (lower case,
 * no default port, no trailing dot), or a fixed `key.host`. A custom key function keys what it chooses:
 * nothing is rewritten for it.
 */
export function alignWithKey(req: IncomingMessage, options: ResolvedOptions): void {
  if (options.keyFunction !== undefined) return;
  const url = req.url ?? '';
  if (url.indexOf('?') !== -1 || url.indexOf('#') !== -1) {
    const normalized = normalizeTarget(url, options.ignoreParam);
    if (normalized !== undefined && normalized !== url) {
      req.url = normalized;
      followRewrite(req, url);
    }
  }
  if (options.keyHost === false || (options.keyHost === 'header' && req.headers.host === undefined)) return;
  // The Host the key names: a fixed `key.host`, or the header normalized (lower case, no default
  // port, no trailing dot), so a vhost that matches names exactly cannot render a 404 for
  // `SITE.TEST` that is then served to everyone asking for `site.test`.
  const host = hostPart(req, options);
  if (req.headers.host !== host) setHost(req, host);
}

/**
 * True when `value` is `host [ ":" port ]` of RFC 3986 §3.2.2-3.2.3: an IP-literal in brackets,
 * or a reg-name (unreserved, pct-encoded, sub-delims; an IPv4 address is one), then digits.
 * An empty value is valid (RFC 9112 §3.2: the authority may be empty).
 */
export function isValidHost(value: string): boolean {
  let i = 0;
  const n = value.length;
  if (n > 0 && value.charCodeAt(0) === 91 /* [ */) {
    const close = value.indexOf(']');
    if (close < 2) return false;
    for (i = 1; i < close; i++) if (!isIpLiteralChar(value.charCodeAt(i))) return false;
    i = close + 1;
  } else {
    while (i < n) {
      const c = value.charCodeAt(i);
      if (c === 58 /* : */) break;
      if (c === 37 /* % */) {
        if (!isHex(value.charCodeAt(i + 1)) || !isHex(value.charCodeAt(i + 2))) return false;
        i += 3;
        continue;
      }
      if (!isRegNameChar(c)) return false;
      i++;
    }
  }
  if (i === n) return true;
  if (value.charCodeAt(i) !== 58 /* : */) return false;
  for (i++; i < n; i++) if (!isDigit(value.charCodeAt(i))) return false;
  return true;
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

function isHex(c: number): boolean {
  return isDigit(c) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);
}

/** unreserved (ALPHA DIGIT - . _ ~) and sub-delims (! $ & ' ( ) * + , ; =). */
function isRegNameChar(c: number): boolean {
  if (isDigit(c) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122)) return true;
  return c === 45 || c === 46 || c === 95 || c === 126 || c === 33 || c === 36 || (c >= 38 && c <= 44) || c === 59 || c === 61;
}

/** IPv6address, IPvFuture ("v" HEXDIG "." ...) and a zone: hex digits, ":", ".", "v", "%", unreserved. */
function isIpLiteralChar(c: number): boolean {
  return isHex(c) || c === 58 || c === 46 || c === 118 || c === 86 || c === 37 || c === 45 || c === 95 || c === 126;
}

/** Sets the Host header on `headers` and `rawHeaders` (where a handler may read either). */
function setHost(req: IncomingMessage, host: string): void {
  req.headers.host = host;
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (raw[i]!.toLowerCase() === 'host') {
      raw[i + 1] = host;
      return;
    }
  }
  raw.push('Host', host);
}

/**
 * Express keeps the target as received in `req.originalUrl` (set before this middleware ran):
 * it follows the rewrite, so a handler reading it sees what the key represents too.
 */
function followRewrite(req: IncomingMessage, before: string | undefined): void {
  const r = req as IncomingMessage & { originalUrl?: unknown };
  if (r.originalUrl === before) r.originalUrl = req.url;
}
