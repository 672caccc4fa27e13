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
import { WAITER_ACTIONS } from './outcome.js';
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
}

/** How many times one request looks up (the first time, then after each wait) before it renders alone. */
const MAX_LOOKUPS = 4;

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
    const primary = this.#recv(req);
    if (typeof primary !== 'string') {
      // A successful unsafe method invalidates what it changed (RFC 9111 §4.4).
      if (primary.unsafe) invalidateOnSuccess(req, res, { options, remove: (p) => variants.removePrimary(p) });
      return renderer.pass(req, res, ex, { key: '', reason: primary.pass });
    }
    const key = variants.keyOf(primary, req);
    return tracing.lookup.hasSubscribers ? traceLookup(req, res, key, () => this.#find(req, res, ex, primary, key)) : this.#find(req, res, ex, primary, key);
  }

  /**
   * recv and hash, for {@link handle} and {@link serveFresh} alike: the primary key of a GET or
   * HEAD the cache looks up, or why the request passes (allocated only then: a hit allocates
   * nothing here).
   */
  #recv(req: IncomingMessage): string | { pass: string; unsafe: boolean } {
    const method = req.method;
    // RFC 9112 §3.2.2: an absolute-form target's authority wins over Host (see request.ts).
    const adopted = adoptAbsoluteForm(req);
    // Only GET and HEAD are looked up.
    if (method !== 'GET' && method !== 'HEAD') return { pass: `method ${method ?? ''}`, unsafe: true };
    const bypass = this.#ctx.options.bypass;
    if (bypass !== undefined && bypass(req)) return { pass: 'bypass', unsafe: false };
    const refused = adopted ? refusal(req) : 'invalid target';
    if (refused !== undefined) return { pass: refused, unsafe: false };
    const primary = this.#primaryKey(req);
    return primary ?? { pass: 'uncacheable target', unsafe: false };
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
    return this.#lookup(req, res, ex, { primary, key, entry });
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
    const primary = this.#recv(req);
    if (typeof primary !== 'string') return false;
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

  /**
   * Everything that is not a fresh memory hit, as a loop of steps with no recursion: look up
   * (lower tiers the first time, memory after a wait), decide, act. Serving, rendering and
   * leading end the request; waiting for a flight ends in its outcome, and the outcome's action
   * (`WAITER_ACTIONS`) either ends the request too or names the next lookup. A request looks up
   * at most {@link MAX_LOOKUPS} times, then renders alone: it never waits without bound.
   */
  async #lookup(req: IncomingMessage, res: ServerResponse, ex: Exchange, at: Lookup): Promise<boolean> {
    const { counters, records } = this.#ctx;
    const { tiers, variants, invalidation, renderer, deliver } = this.#p;
    const { primary } = at;
    let { key, entry } = at;
    counters.gets++;
    if (ex.regen !== undefined) this.#ctx.runner = ex.regen;
    /** The lower tier that answered, for Cache-Status detail. */
    let via: Via | undefined;
    let retried = false;
    for (let lookups = 1; ; lookups++) {
      if (lookups === 1 && entry === undefined) {
        let tier: string | undefined;
        ({ key, entry, tier } = await tiers.findLower(
          key,
          (found, k) => variants.fromMarker(primary, k, found, req),
          (found) => Date.now() < found.staleAt && invalidation.verdict(found) === undefined,
        ));
        if (tier !== undefined) via = { tier };
      } else if (lookups > 1) {
        (entry = tiers.memory.get(key)), (via = undefined);
      }
      const flags = this.#flags(req, ex, { primary, key, mayWait: lookups < MAX_LOOKUPS });
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
        case 'peer':
          return this.#p.peerFill!.lead(req, res, ex, { primary, key, flight: records.start(primary, key), fallback: decision.fallback, revalidate: decision.revalidate });
        case 'lead': {
          // Authorization requests lead no shared flight: their response may be theirs alone.
          const flight = req.headers.authorization === undefined ? records.start(primary, key) : undefined;
          // Nodes sharing a tier render a cold key once between them.
          if (flight !== undefined && this.#p.shared !== undefined) return this.#p.shared.lead(req, res, ex, { primary, key, flight, fallback: decision.fallback, revalidate: decision.revalidate });
          return renderer.render(req, res, ex, { primary, key, ticket: undefined, flight, fallback: decision.fallback, revalidate: decision.revalidate });
        }
        case 'wait': {
          counters.loadsDeduped++;
          if (decision.on === 'peer-refetch') {
            // Another node refetches this page for the cluster: wait for its copy (at most
            // PEER_REFETCH_WAIT) rather than render it a second time, then look again.
            await invalidation.publications.waitFor(primary);
            continue;
          }
          // Single flight: wait for the leader, then act on how its flight ended.
          const flight = records.flight(primary, key);
          if (flight === undefined) continue;
          const result = await flight.promise;
          const next = this.#afterFlight(req, res, ex, { primary, key, result, retried });
          if (typeof next !== 'string') return next;
          if (WAITER_ACTIONS[result.outcome] === 'retry') retried = true;
          key = next;
        }
      }
    }
  }

  /**
   * A waiter's step once its flight settled, by the outcome's action (see `outcome.ts`): the
   * request's answer, or the variant key to look up next.
   */
  #afterFlight(
    req: IncomingMessage,
    res: ServerResponse,
    ex: Exchange,
    at: { primary: string; key: string; result: FlightResult; retried: boolean },
  ): boolean | Promise<boolean> | string {
    const { primary, key, result } = at;
    const { counters, report } = this.#ctx;
    const url = req.url ?? '';
    switch (WAITER_ACTIONS[result.outcome]) {
      case 'serve': {
        const entry = result.entry!;
        const mine = this.#p.variants.variantOf(primary, entry.vary, req);
        // Another variant: look up (and perhaps lead) under this request's own variant key.
        if (mine !== result.key) return mine;
        const verdict = this.#p.invalidation.verdict(entry);
        if (result.outcome === 'stale') {
          if (verdict?.hard === true) return key;
          // The leader's render failed: its waiters get the old copy too, never the error.
          counters.stale++;
          counters.staleOnError++;
          const assembling = this.#p.deliver.serve(req, res, entry, 'STALE', Date.now(), ex, COLLAPSED_FAILED);
          report.emit('stale', { key: mine, url, status: 'STALE', reason: 'origin failed (coalesced)' } satisfies CacheEvent);
          return assembling ?? true;
        }
        // Invalidated since (after the flight settled): never served as fresh; look again.
        if (verdict !== undefined) return key;
        counters.hits++;
        const assembling = this.#p.deliver.serve(req, res, entry, result.outcome === 'peer' ? 'PEER' : 'HIT', Date.now(), ex, COLLAPSED);
        report.emit('hit', { key: mine, url, status: 'HIT', reason: 'coalesced' } satisfies CacheEvent);
        return assembling ?? true;
      }
      case 'answer':
        // The origin's own error response, which the leader kept for its waiters (never stored).
        counters.passes++;
        return this.#p.deliver.serve(req, res, result.entry!, 'MISS', Date.now(), ex, COLLAPSED) ?? true;
      case 'render':
        return this.#p.renderer.render(req, res, ex, { primary, key, ticket: undefined, flight: undefined, fallback: undefined, solo: true });
      case 'retry':
        // One retry between the waiters: the first leads a new flight, the others wait for it.
        return at.retried ? this.#p.deliver.failure(res, 500) : key;
      case '504':
        return this.#p.deliver.failure(res, 504);
      case 'lookup':
        return key;
    }
  }

  /** One background refresh of a stale entry; with a shared tier, one for all the nodes sharing it. */
  #refresh(req: IncomingMessage, ex: Exchange, at: { primary: string; key: string; entry: Entry }): void {
    const { background, shared } = this.#p;
    if (shared === undefined) void background.refresh(at.entry, req, ex.regen);
    else this.#ctx.report.track(shared.refresh(at, () => background.refresh(at.entry, req, ex.regen)));
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

  /** What decide() needs to know about the request and its key (read from the key's record). */
  #flags(req: IncomingMessage, ex: Exchange, at: { primary: string; key: string; mayWait: boolean }): RequestFlags {
    const { invalidation } = this.#p;
    const records = this.#ctx.records;
    return {
      authorized: req.headers.authorization !== undefined,
      refetchPending: invalidation.refetchPending(at.primary),
      peerRefetch: invalidation.publications.awaiting(at.primary),
      canRefresh: ex.regen !== undefined || this.#ctx.runner !== undefined,
      // A render begun before an invalidation that covers it is joined by nobody.
      inFlight: records.joinable(at.primary, at.key, req.url ?? '') !== undefined,
      passReason: records.passReason(at.primary),
      // Not a request carrying a peer signature: whatever reaches here with one (an endpoint
      // path rewritten by a mount) must not cascade to peers.
      askPeers: this.#p.peerFill !== undefined && req.headers[SIGNATURE_HEADER] === undefined,
      mayWait: at.mayWait,
      originFailing: records.failing(at.primary),
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
