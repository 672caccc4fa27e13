/**
 * Rendering through the handler: prepare the request (no validators, Range or unkeyed headers),
 * capture the response while it streams to the client, build and store the entry, rescue a
 * failing render with the old copy (stale-on-error), and pass requests the cache must not keep.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import createDebug from 'debug';
import { captureResponse, type CaptureControl, type CaptureHooks, type CaptureResult } from '../capture.js';
import { entrySize } from '../compact.js';
import { headerOf, type Entry } from '../entry.js';
import { CacheError, HandlerError, IncludeError } from '../errors.js';
import { tagsOf } from '../invalidation/targets.js';
import { evaluateResponse, evaluateRevalidation, storedHeaders, type Verdict } from '../policy.js';
import type { IncludeHooks, RenderScope } from '../seam.js';
import { alignWithKey } from '../request.js';
import { answerError, ERROR_TEXT, setStatusHeaders } from '../serve.js';
import { isPromise } from '../stores/store.js';
import type { Deliver } from './deliver.js';
import type { EpochVerdict } from '../invalidation/epochs.js';
import type { ResolvedOptions } from '../options/types.js';
import type { FlightOutcome } from './outcome.js';
import type { CacheEvent, EngineContext, Exchange, FlightResult, Lead, Runner } from './types.js';
import { CONDITIONAL_HEADERS, type Variants } from './variants.js';
import { traceRender, tracing, type RenderContext } from '../observe/tracing.js';
import { forwardOfPass, ttlOf, type Via } from '../observe/cache-status.js';

const debug = createDebug('stratacache:engine');

/** How long (ms) a render goes on after its client left when originTimeout is 0 (never). */
const DETACHED_LIMIT = 30_000;

/** Renders misses and passes. */
export class Renderer {
  readonly #ctx: EngineContext;
  readonly #variants: Variants;
  readonly #deliver: Deliver;
  readonly #renderTime: () => number;
  /** The newest invalidation that covers an entry (a render that raced one is never served fresh). */
  readonly #verdict: (entry: Entry) => EpochVerdict | undefined;
  readonly #transformFor: ((req: IncomingMessage, runner: Runner | undefined) => NonNullable<CaptureHooks['transform']>) | undefined;

  constructor(ctx: EngineContext, parts: { variants: Variants; deliver: Deliver; renderTime: () => number; verdict: (entry: Entry) => EpochVerdict | undefined }) {
    this.#ctx = ctx;
    this.#variants = parts.variants;
    this.#deliver = parts.deliver;
    this.#renderTime = parts.renderTime;
    this.#verdict = parts.verdict;
    const includes = ctx.includes;
    // The capture transform that assembles an HTML response for its client: only with includes.
    this.#transformFor =
      includes === undefined
        ? undefined
        : (req, runner) => (_status, headers) => (includes.isHtml(headers['content-type']) ? (body) => this.#assembleFresh(includes, body, req, runner) : undefined);
  }

  /**
   * Renders a miss through the handler, streaming to the client and storing the result. With a
   * `fallback` (an old copy inside its stale-if-error window), an origin failure before the
   * headers (error status, throw, originTimeout) serves that copy instead, to the client and to
   * every waiter, and the failed response is never stored.
   */
  render(req: IncomingMessage, res: ServerResponse, ex: Exchange, lead: Lead): boolean | Promise<boolean> {
    if (!tracing.render.hasSubscribers) return this.#render(req, res, ex, lead, undefined);
    const context: RenderContext = { key: lead.key, url: req.url ?? '', background: lead.ticket !== undefined };
    return traceRender(context, (finish) => this.#render(req, res, ex, lead, { context, finish }));
  }

  #render(req: IncomingMessage, res: ServerResponse, ex: Exchange, lead: Lead, span: { context: RenderContext; finish: () => void } | undefined): boolean | Promise<boolean> {
    const { primary, key, ticket, flight, fallback, revalidate, solo } = lead;
    const ctx = this.#ctx;
    const options = ctx.options;
    // A hit-for-miss render reads and counts as a pass (stored all the same if it can be).
    if (ticket === undefined && solo === true) ctx.counters.passes++;
    else if (ticket === undefined) {
      ctx.counters.misses++;
      ctx.report.emit('miss', { key, url: req.url ?? '', status: 'MISS' } satisfies CacheEvent);
    }
    // The render loses the client's validators (prepareRequest) and gets the stored copy's own
    // (RFC 9111 §4.3.1: never the client's); a stored answer still honours the client's.
    const validators = fallback === undefined && revalidate === undefined ? undefined : { inm: req.headers['if-none-match'], ims: req.headers['if-modified-since'] };
    const clientValidators = (): void => {
      delete req.headers['if-none-match'];
      delete req.headers['if-modified-since'];
      if (validators?.inm !== undefined) req.headers['if-none-match'] = validators.inm;
      if (validators?.ims !== undefined) req.headers['if-modified-since'] = validators.ims;
    };
    this.#prepareRequest(req);
    if (revalidate !== undefined) {
      ctx.counters.revalidations++;
      sendValidators(req, revalidate);
    }
    // A HEAD miss renders the GET representation so the entry has its body; the client still
    // gets no body, because ServerResponse fixed "no body" from the method it was created with.
    if (req.method === 'HEAD') req.method = 'GET';
    // Entries carry the render's start as storedAt, so one that raced an invalidation is stale.
    const startedAt = this.#renderTime();
    const preset = (fallback === undefined && revalidate === undefined) || res.getHeaderNames().length === 0 ? undefined : res.getHeaders();
    const policyReq = { method: 'GET', url: req.url ?? '/', headers: req.headers };
    let verdict: Verdict | undefined;
    const hooks = ctx.hooks;
    const runner = ex.regen ?? ctx.runner;
    const scope = hooks.openScope(req, runner);
    let settled = false;
    /** The origin answered an error status that the old copy could not replace (its waiters still get it). */
    let erred = false;
    /**
     * The flight was given its outcome early (504 at originTimeout: to the client and the
     * waiters; or a background render's timeout); the render goes on, to be stored.
     */
    let answered = false;
    let timer: NodeJS.Timeout | undefined;
    const settle = (result: FlightResult): void => {
      if (settled) return;
      settled = true;
      if (timer !== undefined) clearTimeout(timer);
      // A failure answered by the old copy starts the backoff.
      if (result.outcome === 'stale') ctx.records.rememberFailing(primary);
      if (span !== undefined) {
        span.context.stored = result.outcome === 'stored';
        span.finish();
      }
      if (flight !== undefined) ctx.records.settle(primary, key, flight, result);
    };
    const staleOutcome = (): FlightResult => ({ outcome: 'stale', entry: fallback, key });
    /** Replaces the handler's response with `entry` (what middleware in front had set is kept). */
    const serveInstead = (entry: Entry, status: 'STALE' | 'REVALIDATED', via?: Via): boolean =>
      control.divert(() => {
        // Drop what the render set; keep what middleware in front of the cache had set.
        for (const name of res.getHeaderNames()) res.removeHeader(name);
        if (preset !== undefined) for (const [name, value] of Object.entries(preset)) if (value !== undefined) res.setHeader(name, value);
        res.statusMessage = '';
        clientValidators();
        this.#deliver.serve(req, res, entry, status, Date.now(), ex, via);
      });
    // Serve the old copy instead of the failing render (the client of a background render is
    // nobody). An ESI template would be assembled asynchronously, after the divert: its leader
    // gets the error, its waiters the stale copy.
    const rescue = (reason: string, originStatus?: number): boolean => {
      if (fallback === undefined || ticket !== undefined || (fallback.esi === true && ctx.includes !== undefined)) return false;
      const served = serveInstead(fallback, 'STALE', { failed: { status: originStatus } });
      if (!served) return false;
      debug('stale: %s %s', reason, key);
      ctx.counters.stale++;
      ctx.counters.staleOnError++;
      ctx.report.emit('stale', { key, url: req.url ?? '', status: 'STALE', reason } satisfies CacheEvent);
      settle(staleOutcome());
      return true;
    };
    const control = captureResponse(
      res,
      {
        onHeaders: (status, headers) => {
          if (timer !== undefined) clearTimeout(timer);
          if (span !== undefined) span.context.statusCode = status;
          if (revalidate !== undefined && status === 304) {
            // RFC 9111 §4.3.4: the stored response, freshened by the 304's header fields.
            const { entry, stored } = this.#notModified(req, revalidate, { primary, headers, startedAt });
            if (ticket === undefined) serveInstead(entry, stored ? 'REVALIDATED' : 'STALE');
            if (stored !== undefined) ctx.records.stored(primary);
            settle(stored === undefined ? { outcome: 'stale', entry, key } : { outcome: 'stored', entry, key: stored });
            return false;
          }
          if (fallback !== undefined && options.staleOnErrorStatuses.has(status)) {
            // The error response never replaces the good entry (RFC 5861 §4).
            if (!rescue(`origin ${status}`, status)) erred = true;
            return false;
          }
          verdict = evaluateResponse(policyReq, { status, headers }, options, Date.now());
          // Headers of a response already answered (504) or whose client left are never sent. A
          // stale copy the origin replaced is reported as such (RFC 9211 fwd=stale).
          const missStatus = solo === true ? 'PASS' : revalidate === undefined ? 'MISS' : 'EXPIRED';
          const detail = ctx.statusDetail;
          if (!answered && !res.destroyed) {
            setStatusHeaders(
              res,
              detail === undefined
                ? ctx.statusHeaders
                : detail.headers(missStatus, {
                    // A stored copy that could not be served: one to revalidate, or to fall back on.
                    fwd: missStatus === 'PASS' ? 'bypass' : revalidate !== undefined || fallback !== undefined ? 'stale' : 'uri-miss',
                    fwdStatus: status,
                    ttl: verdict.storable ? ttlOf(verdict, Date.now()) : undefined,
                    stored: verdict.storable,
                    // The per-route rule that gave the lifetime, as hits name it.
                    rule: verdict.storable ? verdict.rule : undefined,
                  }),
              missStatus,
            );
          }
          if (!verdict.storable) debug('pass: %s %s', verdict.reason, key);
          else this.#variants.varyResponse(res, headers);
          // An error response is kept for the waiters too (never stored): they get the origin's own answer.
          return verdict.storable || (status >= 400 && !PERSONAL.has(verdict.reason));
        },
        // With includes on, an HTML response is held and its client gets the assembled page.
        transform: this.#transformFor?.(req, runner),
        // The render goes on when its client leaves (or was answered 504), so its waiters and
        // later clients get it; bounded by originTimeout (30 s when that is 0). A handler that
        // stops when its client leaves is found out within ABANDON_AFTER (capture.ts).
        outlive: ticket === undefined ? options.originTimeout || DETACHED_LIMIT : undefined,
        // No byte for originTimeout once the headers are out: the response is cut, nothing stored.
        idle: options.originTimeout,
        onDone: (result) => {
          hooks.closeScope(scope);
          if (settled && !answered) return;
          let outcome = erred ? staleOutcome() : this.#conclude(req, primary, result, { key, verdict, scope, startedAt });
          if (fallback !== undefined && (outcome.outcome === 'failed' || outcome.outcome === 'timed-out')) outcome = staleOutcome();
          settle(outcome);
        },
      },
      options.maxEntrySize,
    );
    if (options.originTimeout > 0) {
      // No headers after originTimeout: the old copy answers (stale-if-error), or else a 504
      // does, to the client and its waiters at once; the render goes on and is stored if it can be.
      // A background render has nobody to answer: its waiters get the timeout, it goes on.
      timer = setTimeout(() => {
        if (ticket !== undefined) {
          answered = true;
          return settle(fallback === undefined ? { outcome: 'timed-out' } : staleOutcome());
        }
        if (rescue('origin timeout')) return;
        const { names, values } = ctx.statusHeaders;
        if (control.answer(504, ERROR_TEXT[504], Object.fromEntries(names.map((name, i) => [name, values.MISS[i]!])))) {
          answered = true;
          debug('timeout: %s answered 504, the render goes on', key);
        } else if (control.divert(() => this.#deliver.failure(res, 504))) {
          // No connection of its own to answer on (fetch adapter): the 504 replaces the render.
          debug('timeout: %s answered 504 in place of the render', key);
        } else return;
        settle({ outcome: 'timed-out' });
      }, options.originTimeout);
      timer.unref();
    }
    return this.invoke(req, res, ex, { control, scope, rescue: () => rescue('origin threw') });
  }

  /** Runs the handler without the cache (status PASS). */
  pass(req: IncomingMessage, res: ServerResponse, ex: Exchange, at: { key: string; reason: string }): boolean | Promise<boolean> {
    const ctx = this.#ctx;
    ctx.counters.passes++;
    debug('pass: %s %s', at.reason, at.key);
    const detail = ctx.statusDetail;
    const fwd = detail === undefined ? undefined : forwardOfPass(at.reason);
    setStatusHeaders(res, detail === undefined ? ctx.statusHeaders : detail.headers('PASS', { fwd, detail: fwd === 'method' ? undefined : at.reason }), 'PASS');
    ctx.report.emit('pass', { key: at.key, url: req.url ?? '', status: 'PASS', reason: at.reason } satisfies CacheEvent);
    // With includes on, a passed HTML response is assembled too: its client must never see raw
    // include tags. Nothing is kept (onHeaders: false); without includes no capture is installed.
    const transform = this.#transformFor?.(req, ex.regen ?? ctx.runner);
    const control = transform === undefined ? undefined : captureResponse(res, { onHeaders: () => false, onDone: () => undefined, transform }, ctx.options.maxEntrySize);
    return this.invoke(req, res, ex, { control });
  }

  /** Runs the handler; a throw or rejection aborts the capture and never leaves waiters hanging. */
  invoke(
    req: IncomingMessage,
    res: ServerResponse,
    ex: Exchange,
    at: { control?: CaptureControl | undefined; scope?: RenderScope | undefined; rescue?: () => boolean } = {},
  ): boolean | Promise<boolean> {
    const { scope } = at;
    let r: unknown;
    try {
      r = scope === undefined ? ex.run(req, res) : this.#ctx.hooks.runInScope(scope, () => ex.run(req, res));
    } catch (error) {
      return this.#runFailed(res, ex, at, error);
    }
    if (isPromise(r)) {
      return r.then(
        () => false,
        (error: unknown) => this.#runFailed(res, ex, at, error),
      );
    }
    return false;
  }

  #runFailed(res: ServerResponse, ex: Exchange, at: { control?: CaptureControl | undefined; rescue?: () => boolean }, error: unknown): boolean {
    this.#ctx.report.fail(new HandlerError('handler failed', { cause: error }));
    // A stale copy answers instead of the error (the client sees a cached response, not a 500).
    if (at.rescue?.()) return true;
    at.control?.abort('handler error', error);
    if (ex.rethrow) throw error;
    if (!answerError(res, 500)) res.destroy();
    return false;
  }

  /**
   * A 304 answered a render that sent `stored`'s validators: the stored response with the 304's
   * header fields merged in and its freshness recomputed (RFC 9111 §4.3.4), stored in place when
   * still storable. A 304 that does not select the stored response (other validators) leaves it
   * as it was. Returns the entry to serve and the key it was stored under, if it was.
   */
  #notModified(
    req: IncomingMessage,
    stored: Entry,
    at: { primary: string; headers: Record<string, string | string[] | number | undefined>; startedAt: number },
  ): { entry: Entry; stored: string | undefined } {
    const options = this.#ctx.options;
    const now = Date.now();
    const merged = evaluateRevalidation({ method: 'GET', url: req.url ?? '/', headers: req.headers }, stored, { status: 304, headers: at.headers }, options, now);
    if (merged === undefined) return { entry: stored, stored: undefined };
    this.#ctx.counters.notModified++;
    const { verdict, headers } = merged;
    const entry: Entry = { ...stored, headers, storedAt: at.startedAt, etag: headerOf(headers, 'etag'), lastModified: headerOf(headers, 'last-modified') };
    if (!verdict.storable) {
      debug('revalidated, not stored: %s %s', verdict.reason, at.primary);
      return { entry, stored: undefined };
    }
    Object.assign(entry, {
      initialAge: verdict.initialAge,
      staleAt: verdict.staleAt,
      swrUntil: verdict.swrUntil,
      sieUntil: verdict.sieUntil,
      expiresAt: verdict.keepUntil,
      shared: verdict.shared,
    });
    debug('revalidated: 304 %s', at.primary);
    return { entry, stored: this.#variants.store(at.primary, entry, req.headers) };
  }

  /** Turns a finished capture into the flight's outcome, storing the entry when it may be stored. */
  #conclude(
    req: IncomingMessage,
    primary: string,
    result: CaptureResult,
    at: { key: string; verdict: Verdict | undefined; scope: RenderScope | undefined; startedAt: number },
  ): FlightResult {
    const { verdict, scope } = at;
    const ctx = this.#ctx;
    const options = ctx.options;
    if (result.ok && verdict?.storable) {
      const entry = this.#entryOf(req, result, { verdict, scope, startedAt: at.startedAt });
      // Begun before an invalidation that covers it: never fresh. Hard: not stored at all;
      // soft: stored, stale by its verdict (served only where grace allows, revalidated at once).
      const covering = this.#verdict(entry);
      if (covering?.hard === true) {
        debug('not stored: %s was invalidated (hard) while it rendered', at.key);
        return { outcome: 'invalidated' };
      }
      // Headers and overhead count against the memory budget too: an entry the memory tier would
      // refuse is "too large", not a store.
      if (entrySize(entry) <= options.maxSize) {
        const key = this.#variants.store(primary, entry, req.headers);
        // Hit-for-miss and the failing backoff end with the first storable response.
        ctx.records.stored(primary);
        return { outcome: covering === undefined ? 'stored' : 'invalidated', entry, key };
      }
    }
    // The verdict (taken at header time) explains a response that was never kept; otherwise the
    // capture's own reason does (too large, aborted, handler error, length mismatch, stalled).
    const judged = verdict !== undefined && !verdict.storable ? verdict : undefined;
    const ending = result.ok ? 'too large' : result.reason;
    const reason = judged?.reason ?? ending;
    if (judged?.sticky ?? reason === 'too large') ctx.records.rememberPass(primary, reason);
    if (!result.ok && result.error !== undefined) debug('render failed: %s %s', reason, primary);
    ctx.report.emit('pass', { key: primary, url: req.url ?? '', reason } satisfies CacheEvent);
    if (judged !== undefined && PERSONAL.has(judged.reason)) return { outcome: 'personal' };
    if (judged !== undefined && result.ok) return result.status >= 400 ? { outcome: 'error', entry: answerOf(req, result, options), key: at.key } : { outcome: 'uncacheable' };
    if (ending === 'too large' || ending === 'not kept') return { outcome: 'uncacheable' };
    return { outcome: CAPTURE_OUTCOMES[ending] ?? (verdict === undefined && ending === 'aborted' ? 'abandoned' : 'failed') };
  }

  /** The entry a storable capture makes. */
  #entryOf(req: IncomingMessage, result: CaptureResult & { ok: true }, at: { verdict: Verdict & { storable: true }; scope: RenderScope | undefined; startedAt: number }): Entry {
    const { verdict, scope } = at;
    const options = this.#ctx.options;
    const headers = storedHeaders(result.headers, options);
    const entry: Entry = {
      status: result.status,
      headers,
      body: result.body,
      storedAt: at.startedAt,
      initialAge: verdict.initialAge,
      staleAt: verdict.staleAt,
      swrUntil: verdict.swrUntil,
      sieUntil: verdict.sieUntil,
      expiresAt: verdict.keepUntil,
      etag: headerOf(headers, 'etag'),
      lastModified: headerOf(headers, 'last-modified'),
      shared: verdict.shared,
      url: req.url ?? '/',
      host: req.headers.host ?? '',
      vary: verdict.vary,
      tags: tagsOf(result.headers[options.tagHeader]),
    };
    if (scope !== undefined && scope.reads.size > 0) entry.deps = [...scope.reads];
    // A data key this render read changed while it ran: stored stale at birth, and served as
    // such (one background refresh) until it would have gone stale anyway.
    if (scope?.tainted) (entry.staleAt = entry.storedAt), (entry.swrUntil = Math.max(entry.swrUntil, verdict.staleAt));
    const includes = this.#ctx.includes;
    if (includes !== undefined && includes.isHtml(headerOf(headers, 'content-type')) && includes.isTemplate(result.body)) entry.esi = true;
    return entry;
  }

  /**
   * Removes request headers a stored response must not depend on: validators and Range (the
   * cache wants the full representation and answers conditionals itself), and unkeyed headers.
   */
  #prepareRequest(req: IncomingMessage): void {
    alignWithKey(req, this.#ctx.options);
    const strip = this.#ctx.options.unkeyedHeaders;
    let stripped = false;
    for (const name of CONDITIONAL_HEADERS) if (req.headers[name] !== undefined) (delete req.headers[name], (stripped = true));
    for (const name of strip) if (req.headers[name] !== undefined) (delete req.headers[name], (stripped = true));
    if (!stripped) return;
    const raw = req.rawHeaders;
    const kept: string[] = [];
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const lower = raw[i]!.toLowerCase();
      if (!CONDITIONAL_HEADERS.includes(lower) && !strip.includes(lower)) kept.push(raw[i]!, raw[i + 1]!);
    }
    raw.length = 0;
    raw.push(...kept);
  }

  /** Assembles a just-rendered HTML body for its client. */
  #assembleFresh(includes: IncludeHooks, body: Buffer, req: IncomingMessage, runner: Runner | undefined): Promise<Buffer> {
    if (!includes.isTemplate(body)) return Promise.resolve(body);
    return includes.assemble(body, req, runner).catch((error: unknown) => {
      this.#ctx.report.fail(error instanceof CacheError ? error : new IncludeError('include assembly failed', { cause: error }));
      throw error;
    });
  }
}

/**
 * Reasons a response is not storable that come from the leader's request or are the leader's
 * alone (its credentials, its own no-store, a personalised answer): its waiters render their own.
 */
const PERSONAL: ReadonlySet<string> = new Set(['private', 'set-cookie', 'cookie', 'authorization', 'request no-store']);

/** Capture endings that name their outcome (the rest are `failed`). */
const CAPTURE_OUTCOMES: Readonly<Record<string, FlightOutcome>> = Object.freeze({ stalled: 'timed-out', abandoned: 'abandoned', answered: 'timed-out' });

/**
 * The origin's own answer (an error status, not stored) as a transient entry its waiters are
 * served: stale at once, without validators (a 304 or a Range never applies to it).
 */
function answerOf(req: IncomingMessage, result: CaptureResult & { ok: true }, options: ResolvedOptions): Entry {
  const now = Date.now();
  const headers = storedHeaders(result.headers, options);
  return {
    status: result.status,
    headers: headers.filter(([name]) => name !== 'etag' && name !== 'last-modified'),
    body: result.body,
    storedAt: now,
    initialAge: 0,
    staleAt: now,
    swrUntil: now,
    sieUntil: now,
    expiresAt: now,
    etag: undefined,
    lastModified: undefined,
    shared: true,
    url: req.url ?? '/',
    host: req.headers.host ?? '',
    vary: [],
    tags: [],
  };
}

/** Puts the stored copy's validators on a request that renders (RFC 9111 §4.3.1). */
function sendValidators(req: IncomingMessage, stored: Entry): void {
  if (stored.etag !== undefined) (req.headers['if-none-match'] = stored.etag), req.rawHeaders.push('If-None-Match', stored.etag);
  if (stored.lastModified !== undefined) (req.headers['if-modified-since'] = stored.lastModified), req.rawHeaders.push('If-Modified-Since', stored.lastModified);
}
