/**
 * Nodes sharing a lower tier (Redis) act as one cache. A flight leader takes the store's render
 * lease before rendering a cold key; when another node holds it, the leader waits for that node's
 * entry and serves it to its client and its flight's waiters (cross-node single flight). And every
 * invalidation applied here goes to the other nodes through the store, theirs come back here.
 *
 * Event trace, three nodes, one cold URL: A, B and C each get requests; each node's first request
 * leads its local flight (the others wait on it); A's lease wins; B and C poll the store; A
 * renders, stores (the store write is sent before the lease release, on the same connection),
 * settles its flight, releases; B and C find the entry, store it in memory, settle their flights.
 * Background refreshes of a stale page go through the same lease ({@link SharedFlight.refresh}).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Entry } from '../entry.js';
import type { InvalidationCoordinator } from '../invalidation/coordinator.js';
import type { CacheStore, RenderLeases } from '../stores/store.js';
import type { Deliver } from './deliver.js';
import type { InvalidationJudge } from './peer-fill.js';
import type { Renderer } from './render.js';
import type { Tiers } from './tiers.js';
import type { CacheEvent, EngineContext, Exchange, Flight } from './types.js';
import { COLLAPSED } from '../observe/cache-status.js';

/** Cross-node single flight through the first lower tier that offers render leases. */
export class SharedFlight {
  readonly #ctx: EngineContext;
  readonly #leases: RenderLeases;
  readonly #renderer: Renderer;
  readonly #deliver: Deliver;
  readonly #tiers: Tiers;
  readonly #judge: InvalidationJudge;

  constructor(ctx: EngineContext, parts: { leases: RenderLeases; renderer: Renderer; deliver: Deliver; tiers: Tiers; judge: InvalidationJudge }) {
    this.#ctx = ctx;
    this.#leases = parts.leases;
    this.#renderer = parts.renderer;
    this.#deliver = parts.deliver;
    this.#tiers = parts.tiers;
    this.#judge = parts.judge;
  }

  /** The lease holder renders; the other nodes' leaders serve its entry (or render when it does not come). */
  async lead(
    req: IncomingMessage,
    res: ServerResponse,
    ex: Exchange,
    at: { primary: string; key: string; flight: Flight; fallback: Entry | undefined; revalidate?: Entry | undefined },
  ): Promise<boolean> {
    const { primary, key, flight, fallback, revalidate } = at;
    const ctx = this.#ctx;
    const grant = await this.#leases.acquire(key);
    if (grant !== 'unavailable') {
      const entry = await this.#another(grant, primary, key);
      if (entry !== undefined) {
        this.#tiers.keep(key, entry);
        ctx.records.settle(primary, key, flight, { outcome: 'stored', entry, key });
        ctx.counters.hits++;
        // Cache-Status detail: collapsed into another node's render.
        const assembling = this.#deliver.serve(req, res, entry, 'HIT', Date.now(), ex, COLLAPSED);
        ctx.report.emit('hit', { key, url: req.url ?? '', status: 'HIT', reason: 'rendered by another node' } satisfies CacheEvent);
        return assembling ?? true;
      }
    }
    if (res.destroyed) {
      // The client left while waiting: settle the flight empty; its waiters render for themselves.
      ctx.records.settle(primary, key, flight, { outcome: 'abandoned' });
      return true;
    }
    // The store write (when the response is stored) precedes the settle, so the release follows it.
    if (grant === 'lead') void flight.promise.then(() => this.#leases.release(key));
    return this.#renderer.render(req, res, ex, { primary, key, ticket: undefined, flight, fallback, revalidate });
  }

/**
   * A background refresh of the stale entry under `key`, once for the nodes sharing the store:
   * the node that takes the lease runs `regenerate` (its new entry reaches the store before the
   * lease goes); the others wait for that entry and keep it in memory, or refresh themselves when
   * it does not come. Event trace, three nodes serving one stale page: each node's first stale
   * hit starts a refresh here (later ones on the same node return at once while it runs); A's
   * lease wins and renders; B and C poll the store, find A's entry, and serve it from memory.
   */
  async refresh(at: { primary: string; key: string }, regenerate: () => Promise<unknown>): Promise<void> {
    const { primary, key } = at;
    if (!this.#ctx.records.beginRefresh(primary, key)) return;
    try {
      const grant = await this.#leases.acquire(key);
      if (grant !== 'unavailable') {
        const entry = await this.#another(grant, primary, key);
        if (entry !== undefined) {
          this.#tiers.keep(key, entry);
          return;
        }
      }
      try {
        await regenerate();
      } finally {
        if (grant === 'lead') await this.#leases.release(key);
      }
    } finally {
      this.#ctx.records.endRefresh(primary, key);
    }
  }

  /**
   * The entry another node rendered for `key`: waited for while it holds the lease (`held`), or,
   * with the lease just taken (`lead`), read once more, since the previous holder may have stored
   * and released between this node's miss and its acquire (then the lease is given back at once).
   * Undefined: render here.
   */
  async #another(grant: 'lead' | 'held', primary: string, key: string): Promise<Entry | undefined> {
    if (grant === 'held') return this.#leases.waitFor(key, key, this.#usable(primary, key));
    const entry = await this.#leases.recheck(key, this.#usable(primary, key));
    if (entry !== undefined) void this.#leases.release(key);
    return entry;
  }

  /** What a node waiting for another's render takes: a fresh, valid entry; never a Vary marker (bodiless, under the primary key). */
  #usable(primary: string, key: string): (e: Entry) => boolean {
    return (e) => Date.now() < e.staleAt && !this.#judge.isInvalidated(e) && !(key === primary && e.vary.length > 0);
  }
}

/** The first lower tier offering render leases, if any. */
export function leasesOf(stores: readonly CacheStore[]): RenderLeases | undefined {
  return stores.find((s) => s.leases !== undefined)?.leases;
}

/**
 * Publishes this node's invalidations through every lower tier that carries them, and applies
 * the other nodes' (as remote records: never published again, no refetch here; the node that
 * received the flush refetches, and its new entry reaches the shared tier).
 */
export function shareInvalidations(stores: readonly CacheStore[], coordinator: InvalidationCoordinator): void {
  for (const store of stores) {
    const shared = store.invalidations;
    if (shared === undefined) continue;
    coordinator.onInvalidate((r) => {
      if (r.origin !== 'local' || (r.paths.length === 0 && r.tags.length === 0)) return;
      shared.publish({ paths: r.paths, tags: r.tags, scope: r.scope, hard: r.hard, at: r.at });
    });
    shared.start((r, node) =>
      coordinator.invalidate({ paths: [...r.paths], tags: [...r.tags], scope: r.scope, hard: r.hard }, { origin: 'remote', at: r.at, node: `${store.name}:${node}` }),
    );
  }
}
