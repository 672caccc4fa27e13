/**
 * A flight leader asks its peers before rendering (groupcache's load: pick a peer, fall back to
 * a local load on error). Peer replies are judged by local rules (`peers/judge.ts`).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { entrySize } from '../compact.js';
import type { Entry } from '../entry.js';
import type { PeerCluster, PeerHit } from '../peers/cluster.js';
import { acceptPeerEntry, forwardedHeaders } from '../peers/judge.js';
import type { LookupQuery } from '../peers/protocol.js';
import { ownerFetchQuery } from './owner-fetch.js';
import type { Deliver } from './deliver.js';
import type { Renderer } from './render.js';
import type { CacheEvent, EngineContext, Exchange, Flight } from './types.js';
import type { Variants } from './variants.js';

/** Whether an invalidation applied here reaches an entry (a peer's copy older than it is refused). */
export interface InvalidationJudge {
  isInvalidated(entry: Entry): boolean;
}

/** Peer lookups for flight leaders. */
export class PeerFill {
  readonly #ctx: EngineContext;
  readonly #peers: PeerCluster;
  readonly #variants: Variants;
  readonly #renderer: Renderer;
  readonly #deliver: Deliver;
  readonly #judge: InvalidationJudge;
  /** Stale-on-error is on: a leader with no local fallback also asks for a peer's stale copy. */
  readonly #staleOnError: boolean;

  constructor(ctx: EngineContext, parts: { peers: PeerCluster; variants: Variants; renderer: Renderer; deliver: Deliver; judge: InvalidationJudge }) {
    this.#ctx = ctx;
    this.#peers = parts.peers;
    this.#variants = parts.variants;
    this.#renderer = parts.renderer;
    this.#deliver = parts.deliver;
    this.#judge = parts.judge;
    this.#staleOnError = ctx.options.staleOnErrorStatuses.size > 0;
  }

  /**
   * Event trace: A leads k -> waiters W1..Wn join A's flight -> A asks peers -> hit: A serves
   * PEER, resolves the flight (W1..Wn served from the same entry) / miss, error or timeout: A
   * renders as if there were no peers, and the flight resolves when the render ends.
   */
  async lead(
    req: IncomingMessage,
    res: ServerResponse,
    ex: Exchange,
    at: { primary: string; key: string; flight: Flight; fallback: Entry | undefined; revalidate?: Entry | undefined },
  ): Promise<boolean> {
    const { primary, key, flight, fallback, revalidate } = at;
    const ctx = this.#ctx;
    // With no usable local copy to answer a failing origin, the same lookup also asks for a copy
    // still inside its stale-if-error window (RFC 5861 §4): kept aside, served only if the render fails.
    const wantStale = fallback === undefined && this.#staleOnError;
    const { hit, stale } = await this.#ask(req, primary, wantStale);
    if (hit === undefined) {
      if (res.destroyed) {
        // The client left during the lookup: a render on a closed response would never settle
        // the flight. Settle it empty; waiters render for themselves.
        ctx.records.settle(primary, key, flight, { outcome: 'abandoned' });
        return true;
      }
      return this.#renderer.render(req, res, ex, { primary, key, ticket: undefined, flight, fallback: fallback ?? stale, revalidate });
    }
    const { entry } = hit;
    // Copied locally only when the memory tier can hold it (the same bound as a local render's).
    const { key: stored, copy } = this.#keep(primary, entry, this.#variants.view(req));
    ctx.records.settle(primary, key, flight, { outcome: 'peer', entry, key: stored });
    const assembling = this.#deliver.serve(req, res, entry, 'PEER', Date.now(), ex, ctx.statusDetail === undefined ? undefined : { peer: { url: hit.peer, stored: copy } });
    ctx.report.emit('peer-hit', { key: stored, url: req.url ?? '', status: 'PEER', peer: hit.peer } satisfies CacheEvent);
    return assembling ?? true;
  }

  /**
   * Asks the peers for `primary` with the request's variant-selecting headers; judges replies by
   * local rules. With `wantStale`, the lookup does not ask for fresh copies only, and the first
   * copy that is stale but inside its stale-if-error window (and passes every other local rule:
   * not invalidated here, same variant, shareable) is returned as `stale`.
   */
  async #ask(req: IncomingMessage, primary: string, wantStale: boolean): Promise<{ hit: PeerHit | undefined; stale: Entry | undefined }> {
    const view = this.#variants.view(req);
    let sent = forwardedHeaders(view, this.#variants.names(primary));
    let fill: LookupQuery['fill'];
    // Owner-fetch: the owner may render this request's page (never with its credentials).
    if (this.#peers.ownerFetch) ({ headers: sent, fill } = ownerFetchQuery({ url: req.url ?? '', headers: req.headers }, sent, this.#ctx.options.keyHeaders));
    const authorized = req.headers.authorization !== undefined;
    const { cacheStatuses, maxEntrySize } = this.#ctx.options;
    const isInvalidated = (entry: Entry): boolean => this.#judge.isInvalidated(entry);
    let stale: Entry | undefined;
    const hit = await this.#peers.find({ ns: 'r', key: primary, headers: sent, freshAt: wantStale ? undefined : Date.now(), fill }, (entry) => {
      const ctx = { primary, sent, view, authorized, cacheStatuses, maxEntrySize, isInvalidated, now: Date.now() };
      if (acceptPeerEntry(entry, ctx)) return true;
      if (wantStale && stale === undefined && acceptPeerEntry(entry, { ...ctx, window: 'stale-if-error' })) stale = entry;
      return false;
    });
    return { hit, stale };
  }

  /**
   * A background refresh under `strategy: 'owner-fetch'` (see `Background.regenerate`): asks the
   * key's owner for the page the synthetic `req` renders, and keeps its copy as a peer hit would
   * be kept. Undefined (render it here) when this node owns the key or the owner brought nothing.
   */
  async fromOwner(req: IncomingMessage, primary: string): Promise<{ entry: Entry; key: string } | undefined> {
    const { hit } = await this.#ask(req, primary, false);
    if (hit === undefined) return undefined;
    return { entry: hit.entry, key: this.#keep(primary, hit.entry, this.#variants.view(req)).key };
  }

  /** Stores a peer's entry here as `updateLocalCache` says (and the memory tier can hold it); its variant key. */
  #keep(primary: string, entry: Entry, view: IncomingMessage['headers']): { key: string; copy: boolean } {
    const ctx = this.#ctx;
    const copy = ctx.options.peers.updateLocalCache && entrySize(entry) <= ctx.options.maxSize;
    return { key: copy ? this.#variants.store(primary, entry, view) : this.#variants.storedKey(primary, entry, view), copy };
  }
}
