/**
 * The peer protocol's request targets. One lookup is `GET <path>/<ns>?k=<key>[&f=<ms>][&h=<name>:<value>]...`:
 * - `ns`, a namespace of one lower-case letter: `r` the response cache; `d` the data cache
 *   (data/peers.ts); `i` takes signed POSTs of invalidation records (peers/propagation.ts). A
 *   node that does not serve a namespace answers 404 (a miss, not an error), so
 *   nodes of different versions can share a cluster during a rolling upgrade.
 * - `k`, the primary key, exactly as the asking node computed it;
 * - `f`, optional: only an entry still fresh at this instant (epoch ms on the asker's clock) is
 *   wanted, so a stale copy is not shipped just to be refused;
 * - `h`, repeated: request headers of the client, so the peer picks the right `Vary` variant;
 * - `u` and `a`, optional (`strategy: 'owner-fetch'`): the request target and Host the key was
 *   computed from. With them the peer, the key's owner, may render the page when it has no
 *   fresh copy: a GET of `u` on `a` with the `h` headers only (see engine/owner-fetch.ts).
 * The whole target (query included) is covered by the request signature.
 */

/** A lookup as the endpoint receives it. */
export interface LookupQuery {
  /** Namespace: `r` (responses), `d` (data). */
  ns: string;
  /** Primary key. */
  key: string;
  /** Request headers for variant selection, lower-case names. */
  headers: Record<string, string>;
  /** Wanted fresh at this instant (epoch ms), when given. */
  freshAt: number | undefined;
  /**
   * Set by an owner-fetch: the request target and Host the key was computed from, so the owner
   * may render the page (a GET of `url` on `host` with `headers` only) when it has no fresh copy.
   */
  fill?: { url: string; host: string } | undefined;
}

/**
 * Longest lookup target sent, in characters: with the signature headers it stays well inside
 * Node's default 16 KiB request head. A longer one (a huge key) is not sent at all.
 */
export const MAX_TARGET_LENGTH = 12 * 1024;

const NAMESPACE = /^[a-z]$/;

/** Builds a lookup's target under the endpoint `path`. */
export function lookupTarget(path: string, query: LookupQuery): string {
  const base = new URLSearchParams({ k: query.key });
  if (query.freshAt !== undefined) base.set('f', String(query.freshAt));
  if (query.fill !== undefined) {
    base.set('u', query.fill.url);
    base.set('a', query.fill.host);
  }
  let target = `${path}/${query.ns}?${base.toString()}`;
  for (const [name, value] of Object.entries(query.headers)) target += `&${new URLSearchParams({ h: `${name}:${value}` }).toString()}`;
  return target;
}

/** True when `url` (a request target) is addressed to the endpoint at `path`. */
export function isPeerTarget(path: string, url: string): boolean {
  if (!url.startsWith(path)) return false;
  const next = url.charCodeAt(path.length);
  return Number.isNaN(next) || next === 47 /* / */ || next === 63 /* ? */;
}

/** Parses a lookup target; undefined when it is malformed (answered 400). */
export function parseLookupTarget(path: string, url: string): LookupQuery | undefined {
  if (!isPeerTarget(path, url)) return undefined;
  const rest = url.slice(path.length);
  const q = rest.indexOf('?');
  if (q === -1) return undefined;
  const ns = rest.slice(1, q);
  if (rest.charCodeAt(0) !== 47 || !NAMESPACE.test(ns)) return undefined;
  const params = new URLSearchParams(rest.slice(q + 1));
  const key = params.get('k');
  if (key === null || key === '') return undefined;
  let freshAt: number | undefined;
  const f = params.get('f');
  if (f !== null) {
    if (!/^\d{1,16}$/.test(f)) return undefined;
    freshAt = Number(f);
  }
  const headers: Record<string, string> = {};
  for (const h of params.getAll('h')) {
    const colon = h.indexOf(':');
    if (colon <= 0) return undefined;
    const name = h.slice(0, colon).toLowerCase();
    if (!/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(name)) return undefined;
    headers[name] = h.slice(colon + 1);
  }
  const query: LookupQuery = { ns, key, headers, freshAt };
  const target = params.get('u');
  const host = params.get('a');
  if (target !== null) {
    if (host === null || target.charCodeAt(0) !== 47) return undefined;
    query.fill = { url: target, host };
  }
  return query;
}
