/**
 * Both sides of `peers.strategy: 'owner-fetch'` (groupcache's shape: the owner of a key loads it
 * once for everyone; Cloudflare's tiered cache):
 * - the asker's request ({@link ownerFetchQuery}): which headers go to the owner, and whether
 *   the owner may render for this request at all (never for one carrying Cookie or
 *   Authorization, never with them);
 * - the owner's answer ({@link OwnerAnswers}): from its tiers when it has a usable copy, else a
 *   render of exactly the request the key names, in the same flight as its own requests for the
 *   key. A render for a peer never asks peers (it is a background render), so nothing cascades.
 * A response that is not storable (private, Set-Cookie, no-store, an error status) never leaves
 * the owner: the peer is told "not here" and renders the page itself.
 */
import type { IncomingHttpHeaders } from 'node:http';
import createDebug from 'debug';
import type { Entry } from '../entry.js';
import type { LookupQuery } from '../peers/protocol.js';
import type { Background } from './background.js';
import type { Tiers } from './tiers.js';
import type { EngineContext } from './types.js';
import type { Variants } from './variants.js';

const debug = createDebug('stratacache:peers');

/** Request headers an owner-fetch never carries, nor a render for a peer uses: the asker's credentials. */
const CREDENTIALS: ReadonlySet<string> = new Set(['cookie', 'authorization', 'proxy-authorization']);

/**
 * The owner-fetch part of a lookup for a request: `sent` (the variant-selecting headers already
 * chosen) without credentials, plus the headers the primary key is computed from (`keyHeaders`),
 * and `fill`: the request's target and Host, so the owner may render it. No `fill` (a plain
 * lookup: the owner answers from its tiers only) for a request carrying Cookie or Authorization,
 * or keyed on a credential header: its page may be its own.
 */
export function ownerFetchQuery(
  request: { url: string; headers: IncomingHttpHeaders },
  sent: Record<string, string>,
  keyHeaders: readonly string[],
): { headers: Record<string, string>; fill: LookupQuery['fill'] } {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(sent)) if (!CREDENTIALS.has(name)) headers[name] = value;
  const h = request.headers;
  const personal = h.cookie !== undefined || h.authorization !== undefined || h['proxy-authorization'] !== undefined;
  if (personal || request.url.charCodeAt(0) !== 47 || keyHeaders.some((name) => CREDENTIALS.has(name))) return { headers, fill: undefined };
  for (const name of keyHeaders) {
    const v = h[name];
    if (v !== undefined) headers[name] = Array.isArray(v) ? v.join(',') : v;
  }
  return { headers, fill: { url: request.url, host: h.host ?? '' } };
}

/** What the owner's answer needs from the engine. */
export interface OwnerParts {
  tiers: Tiers;
  variants: Variants;
  background: Background;
  /** Whether an invalidation applied here reaches `entry`. */
  isInvalidated(entry: Entry): boolean;
}

/** The peer endpoint's answers (namespace `r`) on a node that may render for its peers. */
export class OwnerAnswers {
  readonly #ctx: EngineContext;
  readonly #p: OwnerParts;

  constructor(ctx: EngineContext, parts: OwnerParts) {
    this.#ctx = ctx;
    this.#p = parts;
  }

  /**
   * A peer's lookup: the local copy of the variant its headers select; with `fill`, when that
   * copy is missing, stale (at the asker's `freshAt` or now) or invalidated here, the page
   * rendered now for the cluster (joining a render of the key in flight), or undefined (render
   * it yourself) when the render did not store it. (The endpoint then sends only what is fresh
   * at `freshAt`; a lookup without it, wanting a stale-if-error copy too, may get the old copy
   * a failed render fell back to.)
   */
  async answer(query: LookupQuery): Promise<Entry | undefined> {
    const { variants, tiers, background } = this.#p;
    const found = await tiers.find(variants.keyFor(query.key, query.headers));
    const fill = query.fill;
    if (fill === undefined) return found;
    const now = Date.now();
    if (found !== undefined && Math.max(now, query.freshAt ?? now) < found.staleAt && !this.#p.isInvalidated(found)) return found;
    // Known not storable (hit-for-miss): rendering it here would serve nobody.
    if (this.#ctx.records.passReason(query.key) !== undefined) return undefined;
    const result = await background.renderForPeer({ url: fill.url, host: fill.host, headers: this.#renderHeaders(query) }, query.key);
    if (result === undefined) return undefined;
    // `stale`: the render failed and the old copy answered; it goes back as a stale copy, which
    // the asker keeps only to answer its own failing render (stale-if-error), never as fresh.
    if ((result.outcome === 'stored' || result.outcome === 'peer' || result.outcome === 'stale') && result.entry !== undefined) return result.entry;
    debug('render for a peer of %s: %s, not sent', query.key, result.outcome);
    return undefined;
  }

  /**
   * The headers a render for a peer sends: those the peer sent, without credentials, and only
   * the ones the key and the known `Vary` use when the Vary is known here.
   */
  #renderHeaders(query: LookupQuery): Record<string, string> {
    const names = this.#p.variants.names(query.key);
    const keyHeaders = this.#ctx.options.keyHeaders;
    const out: Record<string, string> = {};
    for (const [name, value] of Object.entries(query.headers)) {
      if (CREDENTIALS.has(name)) continue;
      if (names !== undefined && !names.includes(name) && !keyHeaders.includes(name)) continue;
      out[name] = value;
    }
    return out;
  }
}
