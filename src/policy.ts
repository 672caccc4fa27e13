/**
 * Storable? fresh? stale-but-servable? The only module that reads Cache-Control: everything goes
 * through http-cache-semantics in shared-cache mode, plus the product's own rules (default TTL,
 * status allowlist, Set-Cookie, header allowlist).
 */
import CachePolicy from 'http-cache-semantics';
import createDebug from 'debug';
import { parseHttpDate } from './http-date.js';
import type { ResolvedOptions } from './options/types.js';
import { parseDictionary } from './structured-fields.js';

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
  Partial<Pick<ResolvedOptions, 'staleWhileRevalidate' | 'staleIfError' | 'staleOnErrorStatuses' | 'staleOnErrorExplicit' | 'heuristicFreshness'>> &
  // Cookie names that do not personalise, and the targeted cache-control fields obeyed (RFC 9213).
  Partial<Pick<ResolvedOptions, 'ignoreCookie' | 'targetedCacheControl'>> &
  // Per-route rules (the response cache's): lifetimes and windows where the origin gives none.
  Partial<Pick<ResolvedOptions, 'rules'>>;

/** The verdict on one response. */
export type Verdict =
  | {
      storable: true;
      staleAt: number;
      swrUntil: number;
      sieUntil: number;
      /**
       * Until when the entry is kept: the end of its stale windows, or, when it has a validator
       * (ETag, Last-Modified), `maxTtl` past staleAt so a stale copy can be revalidated (RFC 9111 §4.3).
       */
      keepUntil: number;
      initialAge: number;
      shared: boolean;
      vary: string[];
      /** The name of the per-route rule that applied, if one did. */
      rule?: string;
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

/** Hop-by-hop headers and those the cache computes itself (the origin's `Date` is kept and served, RFC 9110 §6.6.1). */
const NOT_STORED = new Set([...HOP_BY_HOP, 'age', 'content-length', 'set-cookie', 'x-cache', 'cache-status']);

/** Representation metadata kept even under a `storeHeaders` allowlist: dropping it corrupts the body. */
const ALWAYS_STORED = new Set(['content-type', 'content-encoding', 'content-language', 'vary']);

/** Statuses http-cache-semantics understands; others are judged as if they were 200. */
const UNDERSTOOD = new Set([200, 203, 204, 300, 301, 302, 303, 307, 308, 404, 405, 410, 414, 501]);

/**
 * Statuses never stored whatever their freshness: interim and partial responses and 304, which
 * are not a full representation of the target (RFC 9111 §3, §3.3).
 */
const NEVER_STORED = (status: number): boolean => status < 200 || status === 206 || status === 304;

const toHeaderValue = (v: string | string[] | number | undefined): string | string[] | undefined =>
  typeof v === 'number' ? String(v) : v;

/** Flattens response headers into header values http-cache-semantics accepts. */
function policyHeaders(headers: PolicyResponse['headers']): Record<string, string | string[] | undefined> {
  const out: Record<string, string | string[] | undefined> = {};
  for (const name of Object.keys(headers)) out[name] = toHeaderValue(headers[name]);
  return out;
}

/** One header's lines joined as one comma-separated value (RFC 9110 §5.3). */
function joined(value: string | string[] | number | undefined): string | undefined {
  if (value === undefined) return undefined;
  return Array.isArray(value) ? value.join(', ') : String(value);
}

/**
 * Lower-cases the directive names of a Cache-Control or Pragma value, arguments (quoted or not)
 * untouched: directive names are case-insensitive (RFC 9111 §5.2) and http-cache-semantics
 * matches them as written, so `Private` would otherwise be ignored.
 */
export function normalizeDirectives(value: string): string {
  let out = '';
  let inName = true;
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const ch = value[i]!;
    if (quoted) {
      out += ch;
      if (ch === '\\' && i + 1 < value.length) out += value[++i];
      else if (ch === '"') quoted = false;
      continue;
    }
    if (ch === '"') quoted = true;
    else if (ch === ',') inName = true;
    else if (ch === '=') inName = false;
    out += inName ? ch.toLowerCase() : ch;
  }
  return out;
}

/** Drops the named directives from a normalized Cache-Control value. */
function withoutDirectives(value: string, names: readonly string[]): string {
  return value
    .split(',')
    .filter((part) => !names.includes(part.split('=')[0]!.trim()))
    .join(',');
}

/**
 * The targeted cache-control field this cache obeys (RFC 9213 §2.2): the first of `fields`
 * present whose value is a valid Dictionary with integer max-age/s-maxage, as a Cache-Control value.
 */
function targetedCacheControl(headers: Record<string, string | string[] | undefined>, fields: readonly string[]): string | undefined {
  for (const field of fields) {
    const raw = joined(headers[field]);
    if (raw === undefined) continue;
    const dict = parseDictionary(raw);
    if (dict === undefined) continue;
    const parts: string[] = [];
    let valid = true;
    for (const [name, item] of dict) {
      if ((name === 'max-age' || name === 's-maxage') && item.type !== 'integer') valid = false;
      if (item.type === 'boolean' && item.value) parts.push(name);
      else if (item.type === 'integer') parts.push(`${name}=${item.value}`);
    }
    if (valid) return parts.join(', ');
  }
  return undefined;
}

/**
 * The `Age` value in seconds (RFC 9111 §5.1): the first member of the first line, a
 * non-negative integer; anything else is invalid and ignored (undefined).
 */
export function parseAge(value: string | string[] | number | undefined): number | undefined {
  const first = joined(value)?.split(',')[0]?.trim();
  if (first === undefined || !/^\d+$/.test(first)) return undefined;
  return Math.min(Number(first), 2 ** 31);
}

/** The response and request headers as the policy judges them (see {@link policyView}). */
interface PolicyView {
  req: Record<string, string | string[] | undefined>;
  res: Record<string, string | string[] | undefined>;
  /** The response's effective cache directives (the targeted field's when one applies). */
  cc: Map<string, string>;
  /** `Expires` was present and is not one valid HTTP-date: already stale (RFC 9111 §5.3). */
  invalidExpires: boolean;
}

/**
 * Normalizes what http-cache-semantics reads, without touching what is stored: directive names
 * lower-cased in Cache-Control and Pragma (request and response), the targeted field
 * (`CDN-Cache-Control`) in place of Cache-Control and Expires when it applies, `Age` parsed
 * strictly, `Expires` parsed strictly (an invalid one becomes "0", a time in the past), and
 * `proxy-revalidate` withheld (it only forbids serving stale, applied here; http-cache-semantics
 * would make the response stale at once).
 */
function policyView(req: PolicyRequest, headers: Record<string, string | string[] | undefined>, options: PolicyOptions): PolicyView {
  const res = { ...headers };
  const targeted = options.targetedCacheControl === undefined ? undefined : targetedCacheControl(res, options.targetedCacheControl);
  if (targeted !== undefined) {
    // RFC 9213 §2.2: a cache obeying a targeted field ignores Cache-Control and Expires.
    res['cache-control'] = targeted;
    delete res.expires;
    delete res.pragma;
  }
  const cc = joined(res['cache-control']);
  const normalized = cc === undefined ? undefined : normalizeDirectives(cc);
  if (normalized !== undefined) res['cache-control'] = withoutDirectives(normalized, ['proxy-revalidate']);
  const pragma = joined(res.pragma);
  if (pragma !== undefined) res.pragma = normalizeDirectives(pragma);
  const age = parseAge(res.age);
  if (age === undefined) delete res.age;
  else res.age = String(age);
  let invalidExpires = false;
  if (res.expires !== undefined) {
    const expires = Array.isArray(res.expires) ? (res.expires.length === 1 ? parseHttpDate(res.expires[0]!) : undefined) : parseHttpDate(res.expires);
    invalidExpires = expires === undefined;
    res.expires = expires === undefined ? '0' : new Date(expires).toUTCString();
  }
  const request = { ...req.headers };
  for (const name of ['cache-control', 'pragma']) {
    const v = joined(request[name]);
    if (v !== undefined) request[name] = normalizeDirectives(v);
  }
  const directives = parseCacheControl(normalized);
  // Without Cache-Control, a response's Pragma: no-cache is read as no-cache (as
  // http-cache-semantics does; RFC 9111 §5.4 keeps Pragma for HTTP/1.0 senders).
  if (normalized === undefined && typeof res.pragma === 'string' && parseCacheControl(res.pragma).has('no-cache')) directives.set('no-cache', '');
  return { req: request, res, cc: directives, invalidExpires };
}

/**
 * True when the request carries credentials that may personalise its response: `Authorization`,
 * or a `Cookie` with a name that `ignoreCookie` does not list.
 */
export function carriesCredentials(headers: PolicyRequest['headers'], ignoreCookie: ((name: string) => boolean) | undefined): boolean {
  if (headers.authorization !== undefined) return true;
  const cookie = joined(headers.cookie);
  if (cookie === undefined || cookie.trim() === '') return false;
  if (ignoreCookie === undefined) return true;
  return cookie.split(';').some((pair) => {
    const name = pair.split('=')[0]!.trim();
    return name !== '' && !ignoreCookie(name);
  });
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
 * What a per-route rule changes for one response: the lifetime where the origin gives none (or,
 * with `override`, in place of the origin's), the stale windows, the statuses stored.
 */
interface RuleTerms {
  name: string | undefined;
  ttl: number | undefined;
  override: boolean;
  staleWhileRevalidate: number | undefined;
  staleIfError: number | undefined;
  cacheStatuses: ReadonlySet<number>;
}

/** The rule terms for `req` (the first matching rule), or the global options' when none matches. */
function ruleTerms(req: PolicyRequest, options: PolicyOptions): RuleTerms {
  const rule = options.rules?.match(req.method, req.headers.host, req.url);
  return {
    name: rule?.name,
    ttl: rule?.ttl,
    override: rule?.override === true,
    staleWhileRevalidate: rule?.staleWhileRevalidate ?? options.staleWhileRevalidate,
    staleIfError: rule?.staleIfError ?? options.staleIfError,
    cacheStatuses: rule?.cacheStatuses ?? options.cacheStatuses,
  };
}

/**
 * Judges a response for storage in the shared cache and computes its absolute times.
 * Pure: the clock is a parameter.
 */
export function evaluateResponse(req: PolicyRequest, res: PolicyResponse, options: PolicyOptions, now: number): Verdict {
  const { status } = res;
  const raw = policyHeaders(res.headers);
  if (raw['set-cookie'] !== undefined) return { storable: false, reason: 'set-cookie', sticky: true };
  const view = policyView(req, raw, options);
  const { cc, res: headers } = view;
  const rule = ruleTerms(req, options);
  // A rule with `override` and a ttl puts its own freshness in place of the origin's: the
  // response is then judged as if it had no explicit freshness (stale windows included).
  const overridden = rule.override && rule.ttl !== undefined;
  // RFC 9111 §4.2.1: explicit freshness. §3: with it, any final status may be stored; without it,
  // only the heuristically cacheable statuses (§4.2.2) listed in cacheStatuses get the default TTL.
  const explicit = !overridden && (cc.has('max-age') || cc.has('s-maxage') || headers.expires !== undefined);
  if (NEVER_STORED(status) || (!explicit && !rule.cacheStatuses.has(status))) return { storable: false, reason: `status ${status}`, sticky: status < 500 };
  const vary = headerList(headers.vary);
  // RFC 9111 §4.1: "Vary: *" never matches a later request.
  if (vary.includes('*')) return { storable: false, reason: 'vary *', sticky: true };
  if (cc.has('must-understand')) {
    // RFC 9111 §5.2.2.3: store only a status this cache understands, and then ignore no-store.
    if (!UNDERSTOOD.has(status)) return { storable: false, reason: 'must-understand', sticky: true };
    headers['cache-control'] = withoutDirectives(String(headers['cache-control']), ['no-store']);
  }

  const policy = new CachePolicy(
    { method: req.method === 'HEAD' ? 'GET' : req.method, url: req.url, headers: view.req },
    { status: UNDERSTOOD.has(status) ? status : 200, headers },
    { shared: true, cacheHeuristic: options.heuristicFreshness ?? 0, immutableMinTimeToLive: 0 },
  );
  const credentialed = carriesCredentials(req.headers, options.ignoreCookie);
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
          : parseCacheControl(view.req['cache-control']).has('no-store')
            ? 'request no-store'
            : 'not storable';
    return { storable: false, reason, sticky: reason !== 'authorization' && reason !== 'request no-store' };
  }
  // A response to a request with a session cookie is stored only when the origin says it may be
  // shared (private was refused above); never on the cache's own default TTL.
  if (credentialed && req.headers.authorization === undefined && !cc.has('public') && !cc.has('s-maxage') && !cc.has('max-age')) {
    return { storable: false, reason: 'cookie', sticky: false };
  }
  // RFC 9111 §5.2.2.4: no-cache means "revalidate every time": stored (stale at once) only when a
  // validator makes that revalidation a conditional request; without one it would be a full render
  // per request anyway.
  const validated = headers.etag !== undefined || headers['last-modified'] !== undefined;
  const noCache = cc.has('no-cache');
  if (noCache && !validated) return { storable: false, reason: 'no-cache', sticky: true };

  const initialAge = Math.max(0, Math.floor(policy.age()));
  let freshMs: number;
  // RFC 9111 §4.2.2: with the heuristic on, http-cache-semantics derives maxAge() from Last-Modified.
  const heuristic = !explicit && (options.heuristicFreshness ?? 0) > 0 && headers['last-modified'] !== undefined;
  if (explicit) freshMs = view.invalidExpires && !cc.has('max-age') && !cc.has('s-maxage') ? 0 : Math.max(0, (policy.maxAge() - policy.age()) * 1000);
  // Heuristic and default freshness are freshness the origin did not give: never for a personalised request.
  else if (credentialed) freshMs = 0;
  else if (rule.ttl !== undefined) freshMs = rule.ttl;
  else if (heuristic) freshMs = Math.max(0, (policy.maxAge() - policy.age()) * 1000);
  else freshMs = options.defaultTtl;
  freshMs = noCache ? 0 : Math.min(freshMs, options.maxTtl);

  // RFC 9111 §4.2.4, §5.2.2.2, §5.2.2.8: must-revalidate, proxy-revalidate and no-cache forbid serving stale.
  const revalidate = noCache || cc.has('must-revalidate') || cc.has('proxy-revalidate');
  // §5.2.2.10: s-maxage implies proxy-revalidate, so the cache's own stale windows do not apply;
  // the origin's own RFC 5861 directives still do, and so does stale-on-error when the operator
  // configured it explicitly (RFC 5861 §4: serving stale on error is the operator's choice).
  // With an overriding rule the origin's directives give way to the rule's windows.
  const windows = overridden ? new Map<string, string>() : cc;
  const sMaxage = windows.has('s-maxage');
  const swrMs = revalidate ? 0 : staleWindow(windows, 'stale-while-revalidate', sMaxage ? undefined : rule.staleWhileRevalidate, freshMs);
  const sieOption = sMaxage && options.staleOnErrorExplicit !== true ? undefined : rule.staleIfError;
  const sieMs = revalidate || options.staleOnErrorStatuses?.size === 0 ? 0 : staleWindow(windows, 'stale-if-error', sieOption, freshMs);
  // Already stale with nothing to serve it stale for: kept only when a validator lets it be revalidated.
  if (freshMs <= 0 && swrMs <= 0 && sieMs <= 0 && !validated) return { storable: false, reason: 'expired', sticky: !credentialed };

  const staleAt = now + Math.round(freshMs);
  debug('storable: %s fresh for %dms', req.url, freshMs);
  return {
    storable: true,
    staleAt,
    swrUntil: staleAt + swrMs,
    sieUntil: staleAt + sieMs,
    keepUntil: Math.max(staleAt + swrMs, staleAt + sieMs, validated ? staleAt + options.maxTtl : 0),
    initialAge,
    // RFC 9111 §3.5: these directives make a response to an authenticated request shareable.
    shared: cc.has('public') || cc.has('s-maxage') || cc.has('must-revalidate'),
    vary,
    ...(rule.name === undefined ? {} : { rule: rule.name }),
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
  const answer = policyHeaders(notModified.headers);
  if (answer.etag === undefined && answer['last-modified'] === undefined && askedWithOwnValidators(req.headers, previous)) {
    // RFC 9111 §4.3.4: a 304 repeating no validator (python's http.server, many static servers)
    // answers the conditional request, and that request carried only this entry's validators:
    // it selects this entry. Its own validators stand in for the missing ones.
    if (typeof previous.etag === 'string') answer.etag = previous.etag;
    if (typeof previous['last-modified'] === 'string') answer['last-modified'] = previous['last-modified'];
  }
  const { policy, matches, modified } = before.revalidatedPolicy(policyReq, { status: 304, headers: answer });
  if (!matches || modified) {
    debug('revalidation: 304 does not match the stored response: %s', req.url);
    return undefined;
  }
  const merged = policy.responseHeaders() as PolicyResponse['headers'];
  const verdict = evaluateResponse(req, { status: stored.status, headers: merged }, options, now);
  return { verdict, headers: storedHeaders(merged, options) };
}

/**
 * True when the request's conditions are exactly the stored response's own validators (what the
 * cache sends when it revalidates, RFC 9111 §4.3.1), at least one of them present.
 */
function askedWithOwnValidators(headers: PolicyRequest['headers'], stored: Record<string, string | string[]>): boolean {
  const inm = headers['if-none-match'];
  const ims = headers['if-modified-since'];
  if (inm === undefined && ims === undefined) return false;
  return (inm === undefined || inm === stored.etag) && (ims === undefined || ims === stored['last-modified']);
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
