/**
 * The request path, top to bottom (groupcache's `Group.load`, Varnish's `vcl-step`): resume a
 * render this cache started; recv (method, bypass); hash (the key); lookup (memory, then lower
 * tiers); decide (`decide.ts`); act: serve, refresh, pass, wait for the render in flight, or lead
 * one (asking the peers first when there are some).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Entry } from '../entry.js';
import { HandlerError } from '../errors.js';
import type { InvalidationCoordinator } from '../invalidation/coordinator.js';
import { primaryKey } from '../key.js';
import { SIGNATURE_HEADER } from '../peers/auth.js';
import { adoptAbsoluteForm, refusal } from '../request.js';
import type { Background } from './background.js';
import { canRescue, decide, hasValidators, isFreshHit, type DecideContext, type Decision, type RequestFlags } from './decide.js';
import type { Deliver } from './deliver.js';
import type { PeerFill } from './peer-fill.js';
import type { Renderer } from './render.js';
import type { HitSink } from '../serve.js';
import type { SharedFlight } from './shared.js';
import type { Tiers } from './tiers.js';
import type { CacheEvent, EngineContext, Exchange, FlightResult, RenderTicket } from './types.js';
import { invalidateOnSuccess } from './unsafe.js';
import type { Variants } from './variants.js';
import { COLLAPSED, type Via } from '../observe/cache-status.js';
import { traceLookup, tracing } from '../observe/tracing.js';

/** Actions that send the entry found as it is (a body left in its file is streamed). */
const SERVES: ReadonlySet<Decision['action']> = new Set(['hit', 'stale', 'revalidate']);

/** Cache-Status detail of a waiter served the old copy because the render it waited for failed. */
const COLLAPSED_FAILED: Via = Object.freeze({ collapsed: true, failed: Object.freeze({}) });

/** The parts the request path acts through. */
export interface HandleParts {
  tiers: Tiers;
  variants: Variants;
  deliver: Deliver;
  renderer: Renderer;
  background: Background;
  invalidation: InvalidationCoordinator;
  /** Undefined without peers: leaders render at once. */
  peerFill: PeerFill | undefined;
  /** Undefined without a shared tier offering render leases (Redis). */
  shared: SharedFlight | undefined;
}

interface Lookup {
  primary: string;
  key: string;
  entry: Entry | undefined;
  /** How many times this request looked again (after a wait); at most 2. */
  attempt: number;
}

/** Handles requests for one cache. */
export class RequestPath {
  readonly #ctx: EngineContext;
  readonly #p: HandleParts;
  /** The rules decide() applies, read from the options once. */
  readonly #rules: Pick<DecideContext, 'gracePeriod' | 'staleOnError'>;

  constructor(ctx: EngineContext, parts: HandleParts) {
    this.#ctx = ctx;
    this.#p = parts;
    this.#rules = { gracePeriod: ctx.options.gracePeriod, staleOnError: ctx.options.staleOnErrorStatuses.size > 0 };
  }

  /**
   * Handles one request. Returns true when the response was served from the cache (the handler
   * did not run), false when the handler ran; a promise of that when it could not answer at once.
   */
  handle(req: IncomingMessage, res: ServerResponse, ex: Exchange): boolean | Promise<boolean> {
    const { options } = this.#ctx;
    const { background, renderer, variants } = this.#p;
    // A background render or sub-request this cache started, back through the app.
    const ticket = background.ticketOf(req);
    if (ticket !== undefined) return ticket.kind === 'sub' ? renderer.invoke(req, res, ex) : this.#resume(req, res, ex, ticket);
    // recv: only GET and HEAD are looked up.
    const method = req.method;
    // RFC 9112 §3.2.2: an absolute-form target's authority wins over Host (see request.ts).
    const adopted = adoptAbsoluteForm(req);
    if (method !== 'GET' && method !== 'HEAD') {
      invalidateOnSuccess(req, res, { options, remove: (primary) => variants.removePrimary(primary) });
      return renderer.pass(req, res, ex, { key: '', reason: `method ${method ?? ''}` });
    }
    if (options.bypass !== undefined && options.bypass(req)) return renderer.pass(req, res, ex, { key: '', reason: 'bypass' });
    const refused = adopted ? refusal(req) : 'invalid target';
    if (refused !== undefined) return renderer.pass(req, res, ex, { key: '', reason: refused });
    // hash
    const primary = this.#primaryKey(req);
    if (primary === undefined) return renderer.pass(req, res, ex, { key: '', reason: 'uncacheable target' });
    const key = variants.keyOf(primary, req);
    return tracing.lookup.hasSubscribers ? traceLookup(req, res, key, () => this.#find(req, res, ex, primary, key)) : this.#find(req, res, ex, primary, key);
  }

  /** lookup in memory: a fresh hit is served synchronously, with one clock read; anything else goes on in {@link #lookup}. */
  #find(req: IncomingMessage, res: ServerResponse, ex: Exchange, primary: string, key: string): boolean | Promise<boolean> {
    const { tiers, invalidation } = this.#p;
    const now = Date.now();
    const entry = tiers.memory.get(key, now);
    if (entry !== undefined && isFreshHit(entry, req.headers.authorization !== undefined, now, invalidation.verdict(entry))) {
      this.#countHit(req, key);
      const assembling = this.#p.deliver.serve(req, res, entry, 'HIT', now, ex);
      return assembling ?? true;
    }
    return this.#lookup(req, res, ex, { primary, key, entry, attempt: 0 });
  }

  /**
   * The first steps of {@link handle} for a client request, when they end in a fresh memory hit of
   * a plain (not template) entry: writes it to `sink` at once and returns true. Returns false,
   * having written and counted nothing, for anything else: the caller then hands the request to
   * `handle` with a real response. No user function may see the request here (a `bypass` or key
   * function may read more of it than method, URL and headers): with one, always false. A render
   * this cache started (a ticket) is never answered here, so an adapter may call this first for
   * every request its framework routes, and build its Exchange only when it returns false.
   */
  serveFresh(req: IncomingMessage, sink: HitSink): boolean {
    const { options } = this.#ctx;
    // While lookups are traced, hits take the traced path of handle() (with a real response).
    if (options.bypass !== undefined || options.keyFunction !== undefined || tracing.lookup.hasSubscribers) return false;
    if (this.#p.background.ticketOf(req) !== undefined) return false;
    const method = req.method;
    if ((method !== 'GET' && method !== 'HEAD') || !adoptAbsoluteForm(req) || refusal(req) !== undefined) return false;
    const primary = this.#primaryKey(req);
    if (primary === undefined) return false;
    const now = Date.now();
    const key = this.#p.variants.keyOf(primary, req);
    const entry = this.#p.tiers.memory.get(key, now);
    if (entry === undefined || this.#p.deliver.isTemplate(entry)) return false;
    if (!isFreshHit(entry, req.headers.authorization !== undefined, now, this.#p.invalidation.verdict(entry))) return false;
    this.#countHit(req, key);
    this.#p.deliver.servePlain(req, sink, entry, 'HIT', now);
    return true;
  }

  /** Counts a fresh memory hit and reports it. */
  #countHit(req: IncomingMessage, key: string): void {
    const { counters, report } = this.#ctx;
    counters.gets++;
    counters.hits++;
    if (report.listens('hit')) report.emit('hit', { key, url: req.url ?? '', status: 'HIT' } satisfies CacheEvent);
  }

  /** Everything that is not a fresh memory hit: lower tiers, then decide and act. */
  async #lookup(req: IncomingMessage, res: ServerResponse, ex: Exchange, at: Lookup): Promise<boolean> {
    const { counters, flights } = this.#ctx;
    const { tiers, variants, invalidation, renderer, deliver } = this.#p;
    const { primary } = at;
    let { key, entry } = at;
    /** The lower tier that answered, for Cache-Status detail. */
    let via: Via | undefined;
    if (at.attempt === 0) counters.gets++;
    if (ex.regen !== undefined) this.#ctx.runner = ex.regen;
    if (entry === undefined) {
      let tier: string | undefined;
      ({ key, entry, tier } = await tiers.findLower(
        key,
        (found, k) => variants.fromMarker(primary, k, found, req),
        (found) => Date.now() < found.staleAt && invalidation.verdict(found) === undefined,
      ));
      if (tier !== undefined) via = { tier };
    }
    const flags = this.#flags(req, ex, { primary, key, attempt: at.attempt });
    const judge = (found: Entry | undefined, now: number): Decision => decide(found, flags, { now, verdict: found === undefined ? undefined : invalidation.verdict(found), ...this.#rules });
    let now = Date.now();
    let decision = judge(entry, now);
    // A large entry whose body is still in its file (see Tiers.findLower) is streamed when it is
    // served; an entry held for anything else (a fallback, validators to merge a 304 into, a
    // template) is read whole first, and decided again as what was read.
    if (entry?.source !== undefined && (!SERVES.has(decision.action) || deliver.isTemplate(entry))) {
      if (decision.action === 'wait') entry.source.release();
      else {
        entry = await tiers.whole(entry);
        decision = judge(entry, (now = Date.now()));
      }
    }
    if (decision.drop) tiers.delete(key);
    const url = req.url ?? '';
    switch (decision.action) {
      case 'hit': {
        counters.hits++;
        const assembling = deliver.serve(req, res, entry!, 'HIT', now, ex, via);
        this.#ctx.report.emit('hit', { key, url, status: 'HIT' } satisfies CacheEvent);
        return assembling ?? true;
      }
      case 'stale':
      case 'revalidate': {
        counters.stale++;
        if (decision.rescue) counters.staleOnError++;
        const assembling = deliver.serve(req, res, entry!, 'STALE', now, ex, via);
        this.#ctx.report.emit('stale', { key, url, status: 'STALE', reason: decision.reason } satisfies CacheEvent);
        if (decision.action === 'revalidate') this.#refresh(req, ex, { primary, key, entry: entry! });
        return assembling ?? true;
      }
      case 'miss':
        return renderer.render(req, res, ex, { primary, key, ticket: undefined, flight: undefined, fallback: decision.fallback, solo: true });
      case 'wait':
        return this.#wait(req, res, ex, { primary, key, decision, attempt: at.attempt });
      case 'peer':
        return this.#p.peerFill!.lead(req, res, ex, { primary, key, flight: flights.start(key), fallback: decision.fallback, revalidate: decision.revalidate });
      case 'lead': {
        // Authorization requests lead no shared flight: their response may be theirs alone.
        const flight = req.headers.authorization === undefined ? flights.start(key) : undefined;
        // Nodes sharing a tier render a cold key once between them.
        if (flight !== undefined && this.#p.shared !== undefined) return this.#p.shared.lead(req, res, ex, { primary, key, flight, fallback: decision.fallback, revalidate: decision.revalidate });
        return renderer.render(req, res, ex, { primary, key, ticket: undefined, flight, fallback: decision.fallback, revalidate: decision.revalidate });
      }
    }
  }

  /** One background refresh of a stale entry; with a shared tier, one for all the nodes sharing it. */
  #refresh(req: IncomingMessage, ex: Exchange, at: { primary: string; key: string; entry: Entry }): void {
    const { background, shared } = this.#p;
    if (shared === undefined) void background.refresh(at.entry, req, ex.regen);
    else this.#ctx.report.track(shared.refresh(at, () => background.refresh(at.entry, req, ex.regen)));
  }

  /** Waits for the peer refetching the page, or for the render in flight, then looks again or serves its result. */
  async #wait(req: IncomingMessage, res: ServerResponse, ex: Exchange, at: { primary: string; key: string; decision: Decision; attempt: number }): Promise<boolean> {
    const { counters, flights, report } = this.#ctx;
    const { primary, key } = at;
    counters.loadsDeduped++;
    if (at.decision.on === 'peer-refetch') {
      // Another node refetches this page for the cluster: wait for its copy (at most
      // PEER_REFETCH_WAIT) rather than render it a second time, then look again.
      await this.#p.invalidation.publications.waitFor(primary);
      return this.#lookup(req, res, ex, { primary, key, entry: this.#p.tiers.memory.get(key), attempt: at.attempt + 1 });
    }
    // Single flight: wait for the leader, then look again (groupcache's load).
    const result = await flights.get(key)!.promise;
    if (result.entry !== undefined) {
      const mine = this.#p.variants.variantOf(primary, result.entry.vary, req);
      const url = req.url ?? '';
      if (mine === result.key && result.stale) {
        // The leader's render failed: its waiters get the old copy too, never the error.
        counters.stale++;
        counters.staleOnError++;
        const assembling = this.#p.deliver.serve(req, res, result.entry, 'STALE', Date.now(), ex, COLLAPSED_FAILED);
        report.emit('stale', { key: mine, url, status: 'STALE', reason: 'origin failed (coalesced)' } satisfies CacheEvent);
        return assembling ?? true;
      }
      if (mine === result.key) {
        counters.hits++;
        const assembling = this.#p.deliver.serve(req, res, result.entry, result.peer ? 'PEER' : 'HIT', Date.now(), ex, COLLAPSED);
        report.emit('hit', { key: mine, url, status: 'HIT', reason: 'coalesced' } satisfies CacheEvent);
        return assembling ?? true;
      }
      // Another variant: look up (and perhaps lead) under this request's own variant key.
      if (at.attempt < 2) return this.#lookup(req, res, ex, { primary, key: mine, entry: this.#p.tiers.memory.get(mine), attempt: at.attempt + 1 });
    }
    return this.#afterUnstored(req, res, ex, { primary, key, result, attempt: at.attempt });
  }

  /**
   * A waiter whose leader stored nothing. Event trace: leader L renders k, W1..Wn wait ->
   * - L timed out (no headers after originTimeout, no old copy): each W answers 504 at once;
   * - L failed or its response was not storable for a reason of its own request: W1..Wn look
   *   again once (the first leads a new flight, the others wait for it: one retry between them);
   *   if that one fails too, each W answers 500: the origin sees at most 2 renders, not n + 1;
   * - L's response is of a kind never stored (sticky: the key is now remembered, hit-for-miss):
   *   each W renders alone, stored if its own response is storable.
   */
  #afterUnstored(req: IncomingMessage, res: ServerResponse, ex: Exchange, at: { primary: string; key: string; result: FlightResult; attempt: number }): boolean | Promise<boolean> {
    const { primary, key, result } = at;
    if (result.timedOut) return this.#p.deliver.failure(res, 504);
    if (!result.sticky && at.attempt === 0) return this.#lookup(req, res, ex, { primary, key, entry: this.#p.tiers.memory.get(key), attempt: 1 });
    if (result.failed) return this.#p.deliver.failure(res, 500);
    return this.#p.renderer.render(req, res, ex, { primary, key, ticket: undefined, flight: undefined, fallback: undefined, solo: true });
  }

  /** A background render (its ticket) comes back through the app: render it for its flight. */
  #resume(req: IncomingMessage, res: ServerResponse, ex: Exchange, ticket: RenderTicket): boolean | Promise<boolean> {
    ticket.used = true;
    // Waiters of a failed background render get the old copy, if it is still within stale-if-error.
    const old = this.#p.tiers.memory.get(ticket.key);
    const at = { now: Date.now(), verdict: old === undefined ? undefined : this.#p.invalidation.verdict(old), staleOnError: this.#rules.staleOnError };
    const fallback = canRescue(old, at) ? old : undefined;
    // A refresh, refetch or priming of a stored page asks with its validators too: a 304 keeps it.
    const revalidate = old !== undefined && at.verdict?.hard !== true && hasValidators(old) ? old : undefined;
    const { primary, key, flight } = ticket;
    return this.#p.renderer.render(req, res, { ...ex, rethrow: ex.rethrow ?? false }, { primary, key, ticket, flight, fallback, revalidate });
  }

  /** What decide() needs to know about the request and its key. */
  #flags(req: IncomingMessage, ex: Exchange, at: { primary: string; key: string; attempt: number }): RequestFlags {
    const { invalidation } = this.#p;
    return {
      authorized: req.headers.authorization !== undefined,
      refetchPending: invalidation.refetchPending(at.primary),
      peerRefetch: invalidation.publications.awaiting(at.primary),
      canRefresh: ex.regen !== undefined || this.#ctx.runner !== undefined,
      inFlight: this.#ctx.flights.has(at.key),
      passReason: this.#p.renderer.passReason(at.primary),
      // Not a request carrying a peer signature: whatever reaches here with one (an endpoint
      // path rewritten by a mount) must not cascade to peers.
      askPeers: this.#p.peerFill !== undefined && req.headers[SIGNATURE_HEADER] === undefined,
      mayWait: at.attempt < 2,
      originFailing: this.#p.renderer.originFailing(at.primary),
    };
  }

  #primaryKey(req: IncomingMessage): string | undefined {
    try {
      return primaryKey(req, this.#ctx.options);
    } catch (error) {
      this.#ctx.report.fail(new HandlerError('options.key threw', { cause: error }));
      return undefined;
    }
  }
}
