/**
 * RFC 9211 `Cache-Status` with detail (`cacheStatusDetail: true`): besides `hit` or `fwd=`, the
 * remaining freshness (`ttl`), whether the response was `stored`, whether the request was
 * `collapsed` into another one's render, the status the origin answered a forwarded request with
 * (`fwd-status`), and which tier answered (`detail`). Pure; the engine passes what it knows.
 */
import type { Entry } from '../entry.js';
import type { RuleSet } from '../rules.js';
import type { CacheStatus, StatusHeaders } from '../serve.js';

/**
 * Why a request went forward (RFC 9211 §2.2): `uri-miss` (nothing stored), `stale` (what was
 * stored could not be served), `request` (the request asked for a fresh response), `method`,
 * `bypass` (the cache is configured not to handle it, or remembers it as not storable), and
 * `peer` (this cache's extension: answered by another node's cache).
 */
export type Forward = 'uri-miss' | 'vary-miss' | 'stale' | 'request' | 'method' | 'bypass' | 'peer';

/** What one response's Cache-Status says. */
export interface StatusDetail {
  /** Served from this cache without going forward. */
  hit?: boolean;
  fwd?: Forward;
  /** The origin's status code for a forwarded request, when known. */
  fwdStatus?: number;
  /** Remaining freshness in seconds (negative when stale). */
  ttl?: number;
  stored?: boolean;
  collapsed?: boolean;
  /** The tier that answered (`memory`, a store's name, `peer`), or a short reason for a pass. */
  detail?: string;
  /** The per-route rule (`options.rules`) that applied: this cache's extension parameter `rule`. */
  rule?: string;
}

/** RFC 8941 token characters: a `detail` that is not one is sent as a quoted string. */
const TOKEN = /^[A-Za-z*][A-Za-z0-9:/!#$%&'*+\-.^_`|~]*$/;

/** An RFC 8941 String (printable ASCII, `\\` and `"` escaped; anything else as `?`). */
const sfString = (s: string): string => `"${s.replace(/[\\"]/g, (c) => `\\${c}`).replace(/[^\x20-\x7e]/g, '?')}"`;

/** The list member for one response: `name; hit; ttl=42; detail=memory`. */
export function cacheStatusValue(name: string, d: StatusDetail): string {
  let v = name;
  if (d.hit === true) v += '; hit';
  if (d.fwd !== undefined) v += `; fwd=${d.fwd}`;
  if (d.fwdStatus !== undefined) v += `; fwd-status=${d.fwdStatus}`;
  if (d.ttl !== undefined) v += `; ttl=${d.ttl}`;
  if (d.stored === true) v += '; stored';
  if (d.collapsed === true) v += '; collapsed';
  if (d.detail !== undefined && d.detail !== '') v += `; detail=${TOKEN.test(d.detail) ? d.detail : sfString(d.detail)}`;
  if (d.rule !== undefined) v += `; rule=${sfString(d.rule)}`;
  return v;
}

/** Seconds of freshness `entry` has left at `now` (RFC 9111 §4.2.1), negative once stale. */
export function ttlOf(entry: Pick<Entry, 'staleAt'>, now: number): number {
  return Math.floor((entry.staleAt - now) / 1000);
}

/** The `fwd` of a pass, from the reason the engine gives it. */
export function forwardOfPass(reason: string): Forward {
  return reason.startsWith('method') ? 'method' : reason.startsWith('request') ? 'request' : 'bypass';
}

/** How a stored entry reached the client, beyond its status (what the detail tells). */
export interface Via {
  /** The tier that answered. @default 'memory' */
  tier?: string;
  /** The request waited for another request's render (single flight). */
  collapsed?: boolean;
  /** Served stale because the origin failed: `fwd=stale` with the origin's status if known. */
  failed?: { status?: number };
  /** A peer's entry: its base URL, and whether it was copied into the local tiers. */
  peer?: { url: string; stored: boolean };
}

/** Cache-Status detail of a request served from another request's render (single flight, or another node's lease). */
export const COLLAPSED: Via = Object.freeze({ collapsed: true });

/**
 * Fills the `Cache-Status` value of one response into a status-header set of its own (one
 * object for the cache, so the per-entry header lists built for it stay valid), for a
 * synchronous write right after. Created only with `cacheStatusDetail` (and a Cache-Status header).
 */
export class StatusDetailer {
  readonly #headers: StatusHeaders;
  readonly #index: number;
  readonly #name: string;
  /** The rules, to name the one that applied to a served entry (undefined without rules). */
  readonly #rules: RuleSet | undefined;

  private constructor(base: StatusHeaders, index: number, name: string, rules: RuleSet | undefined) {
    const values = {} as Record<CacheStatus, string[]>;
    for (const [status, v] of Object.entries(base.values)) values[status as CacheStatus] = [...v];
    this.#headers = { names: base.names, values };
    this.#index = index;
    this.#name = name;
    this.#rules = rules;
  }

  /** A detailer for `base`, or undefined when it sends no `Cache-Status` (nothing to detail). */
  static create(base: StatusHeaders, name: string, rules?: RuleSet): StatusDetailer | undefined {
    const index = base.names.indexOf('cache-status');
    return index === -1 ? undefined : new StatusDetailer(base, index, name, rules);
  }

  /** The headers for `status` with `detail` in Cache-Status; valid until the next call. */
  headers(status: CacheStatus, detail: StatusDetail): StatusHeaders {
    (this.#headers.values[status] as string[])[this.#index] = cacheStatusValue(this.#name, detail);
    return this.#headers;
  }

  /** The headers for an entry served as `status` at `now`. */
  served(status: CacheStatus, entry: Pick<Entry, 'staleAt' | 'url' | 'host'>, now: number, via: Via | undefined): StatusHeaders {
    const ttl = ttlOf(entry, now);
    const detail = via?.tier ?? 'memory';
    const rule = this.#rules?.match('GET', entry.host, entry.url)?.name;
    if (status === 'PEER') return this.headers(status, { fwd: 'peer', ttl, stored: via?.peer?.stored === true, collapsed: via?.collapsed, detail: via?.peer?.url ?? 'peer', rule });
    // RFC 9111 §4.3.4: the origin confirmed the stale copy with a 304; it was stored freshened.
    if (status === 'REVALIDATED') return this.headers(status, { fwd: 'stale', fwdStatus: 304, ttl, stored: true, collapsed: via?.collapsed, detail, rule });
    if (via?.failed !== undefined) return this.headers(status, { fwd: 'stale', fwdStatus: via.failed.status, ttl, collapsed: via.collapsed, detail, rule });
    if (via?.collapsed === true) return this.headers(status, { fwd: 'uri-miss', collapsed: true, ttl, detail, rule });
    // A stale copy served while one background render refreshes it is still a hit (ttl < 0).
    return this.headers(status, { hit: true, ttl, detail, rule });
  }
}
