/**
 * Storable? fresh? stale-but-servable? The only module that reads Cache-Control: everything goes
 * through http-cache-semantics in shared-cache mode, plus the product's own rules (default TTL,
 * status allowlist, Set-Cookie, header allowlist).
 */
import CachePolicy from 'http-cache-semantics';
import createDebug from 'debug';
import type { ResolvedOptions } from './options.js';

const debug = createDebug('stratacache:policy');

/** The request as the policy sees it (plain values, no sockets). */
export interface PolicyRequest {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
}

/** The response as the policy sees it. */
export interface PolicyResponse {
  status: number;
  headers: Record<string, string | string[] | number | undefined>;
}

/** The options the policy reads: the response cache's, or the data cache's with its own default TTL. */
export type PolicyOptions = Pick<ResolvedOptions, 'cacheStatuses' | 'defaultTtl' | 'maxTtl'> &
  // The response cache's stale windows; absent (the data cache), only the RFC 5861 directives count.
  Partial<Pick<ResolvedOptions, 'staleWhileRevalidate' | 'staleIfError' | 'staleOnErrorStatuses' | 'heuristicFreshness'>>;

/** The verdict on one response. */
export type Verdict =
  | {
      storable: true;
      staleAt: number;
      swrUntil: number;
      sieUntil: number;
      initialAge: number;
      shared: boolean;
      vary: string[];
    }
  | {
      storable: false;
      /** Short reason token, for debug and the `pass` event. */
      reason: string;
      /** True when the reason is intrinsic to this URL's responses (remember the key as "pass"). */
      sticky: boolean;
    };

/** Hop-by-hop headers (RFC 9110 §7.6.1): never stored, never forwarded by the proxy. */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** Hop-by-hop headers and those the cache computes itself. */
const NOT_STORED = new Set([...HOP_BY_HOP, 'date', 'age', 'content-length', 'set-cookie', 'x-cache', 'cache-status']);

/** Representation metadata kept even under a `storeHeaders` allowlist: dropping it corrupts the body. */
const ALWAYS_STORED = new Set(['content-type', 'content-encoding', 'content-language', 'vary']);

/** Statuses http-cache-semantics understands; others are judged as if they were 200. */
const UNDERSTOOD = new Set([200, 203, 204, 300, 301, 302, 303, 307, 308, 404, 405, 410, 414, 501]);

const toHeaderValue = (v: string | string[] | number | undefined): string | string[] | undefined =>
  typeof v === 'number' ? String(v) : v;

/** Flattens response headers into header values http-cache-semantics accepts. */
function policyHeaders(headers: PolicyResponse['headers']): Record<string, string | string[] | undefined> {
  const out: Record<string, string | string[] | undefined> = {};
  for (const name of Object.keys(headers)) out[name] = toHeaderValue(headers[name]);
  return out;
}

/** Parses one header's comma-separated list of names (Vary, Connection). */
export function headerList(value: string | string[] | number | undefined): string[] {
  if (value === undefined) return [];
  const joined = Array.isArray(value) ? value.join(',') : String(value);
  return joined
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s !== '');
}

/** Parses Cache-Control into a directive map (names lower-cased, quotes stripped). */
export function parseCacheControl(value: string | string[] | number | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (value === undefined) return out;
  const joined = Array.isArray(value) ? value.join(',') : String(value);
  for (const part of joined.split(',')) {
    const eq = part.indexOf('=');
    const name = (eq === -1 ? part : part.slice(0, eq)).trim().toLowerCase();
    if (name === '') continue;
    const raw = eq === -1 ? '' : part.slice(eq + 1).trim();
    out.set(name, raw.startsWith('"') && raw.endsWith('"') && raw.length >= 2 ? raw.slice(1, -1) : raw);
  }
  return out;
}

/** Seconds of a delta-seconds directive (RFC 9111 §1.2.2), or 0 when absent or invalid. */
function deltaSeconds(cc: Map<string, string>, name: string): number {
  const raw = cc.get(name);
  if (raw === undefined || !/^\d+$/.test(raw)) return 0;
  return Math.min(Number(raw), 2 ** 31);
}

/**
 * A stale window in ms (RFC 5861 §3, §4): the response's directive wins; the option fills in only
 * for responses that were fresh for a while (a max-age=0 response keeps meaning "do not reuse").
 */
function staleWindow(cc: Map<string, string>, directive: string, optionMs: number | undefined, freshMs: number): number {
  if (cc.has(directive)) return deltaSeconds(cc, directive) * 1000;
  return freshMs > 0 ? (optionMs ?? 0) : 0;
}

/**
 * Judges a response for storage in the shared cache and computes its absolute times.
 * Pure: the clock is a parameter.
 */
export function evaluateResponse(req: PolicyRequest, res: PolicyResponse, options: PolicyOptions, now: number): Verdict {
  const { status } = res;
  if (!options.cacheStatuses.has(status)) return { storable: false, reason: `status ${status}`, sticky: status < 500 };
  const headers = policyHeaders(res.headers);
  if (headers['set-cookie'] !== undefined) return { storable: false, reason: 'set-cookie', sticky: true };
  const vary = headerList(headers.vary);
  // RFC 9111 §4.1: "Vary: *" never matches a later request.
  if (vary.includes('*')) return { storable: false, reason: 'vary *', sticky: true };

  const policy = new CachePolicy(
    { method: req.method === 'HEAD' ? 'GET' : req.method, url: req.url, headers: req.headers },
    { status: UNDERSTOOD.has(status) ? status : 200, headers },
    { shared: true, cacheHeuristic: options.heuristicFreshness ?? 0, immutableMinTimeToLive: 0 },
  );
  const cc = parseCacheControl(headers['cache-control']);
  if (!policy.storable()) {
    // Reasons that come from this request (its credentials, its own no-store, RFC 9111 §5.2.1.5)
    // say nothing about the URL: remembering them as "pass" would let one client keep a URL
    // uncacheable for everyone.
    const reason = cc.has('no-store')
      ? 'no-store'
      : cc.has('private')
        ? 'private'
        : req.headers.authorization !== undefined
          ? 'authorization'
          : parseCacheControl(req.headers['cache-control']).has('no-store')
            ? 'request no-store'
            : 'not storable';
    return { storable: false, reason, sticky: reason !== 'authorization' && reason !== 'request no-store' };
  }
  // RFC 9111 §5.2.2.4: no-cache means "revalidate every time"; with a wrapped handler that is a render
  // per request, so storing it buys nothing.
  if (cc.has('no-cache')) return { storable: false, reason: 'no-cache', sticky: true };

  const explicit = cc.has('max-age') || cc.has('s-maxage') || headers.expires !== undefined;
  const initialAge = Math.max(0, Math.floor(policy.age()));
  let freshMs: number;
  // RFC 9111 §4.2.2: with the heuristic on, http-cache-semantics derives maxAge() from Last-Modified.
  const heuristic = !explicit && (options.heuristicFreshness ?? 0) > 0 && headers['last-modified'] !== undefined;
  if (explicit || heuristic) freshMs = Math.max(0, (policy.maxAge() - policy.age()) * 1000);
  else freshMs = options.defaultTtl;
  freshMs = Math.min(freshMs, options.maxTtl);

  // RFC 9111 §4.2.4 / §5.2.2.2: must-revalidate and proxy-revalidate forbid serving stale.
  const mayServeStale = !cc.has('must-revalidate') && !cc.has('proxy-revalidate');
  const swrMs = mayServeStale ? staleWindow(cc, 'stale-while-revalidate', options.staleWhileRevalidate, freshMs) : 0;
  const sieMs = mayServeStale && options.staleOnErrorStatuses?.size !== 0 ? staleWindow(cc, 'stale-if-error', options.staleIfError, freshMs) : 0;
  if (freshMs <= 0 && swrMs <= 0 && sieMs <= 0) return { storable: false, reason: 'expired', sticky: true };

  const staleAt = now + Math.round(freshMs);
  debug('storable: %s fresh for %dms', req.url, freshMs);
  return {
    storable: true,
    staleAt,
    swrUntil: staleAt + swrMs,
    sieUntil: staleAt + sieMs,
    initialAge,
    // RFC 9111 §3.5: these directives make a response to an authenticated request shareable.
    shared: cc.has('public') || cc.has('s-maxage') || cc.has('must-revalidate'),
    vary,
  };
}

/**
 * Judges a 304 answer to a conditional request made with a stored response's validators
 * (RFC 9111 §4.3.3, §4.3.4): http-cache-semantics' `revalidatedPolicy` selects the stored response
 * by validator and merges the 304's header fields into it; the merged response is then judged like
 * a fresh one. Returns the merged headers and their verdict, or undefined when the 304 does not
 * match the stored response (the caller must then fetch without conditions).
 */
export function evaluateRevalidation(
  req: PolicyRequest,
  stored: { status: number; headers: ReadonlyArray<readonly [string, string]> },
  notModified: PolicyResponse,
  options: PolicyOptions & Pick<ResolvedOptions, 'storeHeaders'>,
  now: number,
): { verdict: Verdict; headers: Array<[string, string]> } | undefined {
  const previous: Record<string, string | string[]> = {};
  for (const [name, value] of stored.headers) {
    const prev = previous[name];
    previous[name] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value];
  }
  const policyReq = { method: 'GET', url: req.url, headers: req.headers };
  const status = UNDERSTOOD.has(stored.status) ? stored.status : 200;
  const before = new CachePolicy(policyReq, { status, headers: previous }, { shared: true, cacheHeuristic: 0, immutableMinTimeToLive: 0 });
  const { policy, matches, modified } = before.revalidatedPolicy(policyReq, { status: 304, headers: policyHeaders(notModified.headers) });
  if (!matches || modified) {
    debug('revalidation: 304 does not match the stored response: %s', req.url);
    return undefined;
  }
  const merged = policy.responseHeaders() as PolicyResponse['headers'];
  const verdict = evaluateResponse(req, { status: stored.status, headers: merged }, options, now);
  return { verdict, headers: storedHeaders(merged, options) };
}

/**
 * The response headers an entry keeps: no hop-by-hop headers (nor those named in `Connection`),
 * no `Set-Cookie`, and under an allowlist only the listed ones plus representation metadata.
 */
export function storedHeaders(headers: PolicyResponse['headers'], options: Pick<ResolvedOptions, 'storeHeaders'>): Array<[string, string]> {
  const connectionNamed = new Set(headerList(headers.connection));
  const out: Array<[string, string]> = [];
  for (const name of Object.keys(headers)) {
    const lower = name.toLowerCase();
    if (NOT_STORED.has(lower) || connectionNamed.has(lower)) continue;
    if (options.storeHeaders !== undefined && !options.storeHeaders.has(lower) && !ALWAYS_STORED.has(lower)) continue;
    const value = headers[name];
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) out.push([lower, v]);
    else out.push([lower, String(value)]);
  }
  return out;
}
