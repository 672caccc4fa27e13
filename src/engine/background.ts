/**
 * Renders without a client connection: background regeneration (stale-while-revalidate refresh,
 * refetch, priming) and the data cache's sub-requests. Each synthetic request carries a ticket
 * (a WeakMap, never a property on `req`) that tells `handle` what to do when it comes back
 * through the app.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import createDebug from 'debug';
import { captureResponse, type CaptureResult } from '../capture.js';
import { syntheticExchange, type SyntheticRequest } from '../synthetic.js';
import type { Entry } from '../entry.js';
import { RegenerateError } from '../errors.js';
import { primaryKey } from '../key.js';
import type { ResolvedOptions } from '../options/types.js';
import { isPromise } from '../stores/store.js';
import type { EngineContext, FlightResult, RenderTicket, Runner, Ticket } from './types.js';
import type { Variants } from './variants.js';

const debug = createDebug('stratacache:engine');

/** What a background render fills. */
export interface RenderTarget {
  url: string;
  host: string;
  /** Request headers to send (the variant-selecting ones of the request that asked). */
  headers?: Record<string, string>;
}

/**
 * Asks the key's owner for the page a background refresh would render (`strategy:
 * 'owner-fetch'`): the synthetic request and its primary key in, the owner's entry and the
 * variant key it was stored under here out, or undefined (render it here).
 */
export type OwnerAsk = (req: IncomingMessage, primary: string) => Promise<{ entry: Entry; key: string } | undefined>;

/** Background renders and sub-requests of one engine. */
export class Background {
  readonly #ctx: EngineContext;
  readonly #variants: Variants;
  readonly #tickets = new WeakMap<IncomingMessage, Ticket>();
  /** Set under `strategy: 'owner-fetch'`: refreshes ask the key's owner first. */
  readonly #ask: OwnerAsk | undefined;

  constructor(ctx: EngineContext, variants: Variants, ask?: OwnerAsk) {
    this.#ctx = ctx;
    this.#variants = variants;
    this.#ask = ask;
  }

  /** The ticket of a synthetic request made here, or undefined for a client's request. */
  ticketOf(req: IncomingMessage): Ticket | undefined {
    return this.#tickets.get(req);
  }

  /**
   * Renders a URL in the background, with no client connection, and stores the result; one
   * render per key at a time (a second call joins the first, unless an invalidation covers that
   * one since it began). With `fresh` (a refetch asked for after a flush) it never joins a render
   * already in flight: it renders after the flush, and later requests join it instead. With
   * `ask` (a refresh under `strategy: 'owner-fetch'`), the key's owner is asked first, inside the
   * same flight, and the render runs here only when it brings nothing. Resolves to the stored
   * entry, or undefined when the response was not storable, the render failed (reported as
   * `error`), or an invalidation covered it while it rendered.
   */
  regenerate(target: RenderTarget, runner?: Runner, options: { fresh?: boolean; ask?: OwnerAsk } = {}): Promise<Entry | undefined> {
    const ctx = this.#ctx;
    const started = this.#launch(target, runner ?? ctx.runner, { join: options.fresh !== true, ask: options.ask });
    if (started === undefined) return Promise.resolve(undefined);
    if (started.joined) return started.result.then((r) => (r.outcome === 'stored' || r.outcome === 'peer' ? r.entry : undefined));
    ctx.counters.regenerations++;
    return started.result.then((result) => {
      if (result.outcome !== 'stored' && result.outcome !== 'peer') {
        ctx.report.fail(new RegenerateError(`background render of ${target.url} stored nothing`));
        return undefined;
      }
      return result.entry;
    });
  }

  /**
   * Renders a page a peer asked this node, its owner, for (`strategy: 'owner-fetch'`), in the
   * same flight as this node's own requests for the key: joins the render in flight, else leads
   * one that they join. Renders only when the request built from `target` has the primary key
   * `primary` (the key the peer asked for), so the page rendered is exactly the one the key
   * names. Resolves to the flight's result, or undefined when nothing could render (no app to
   * run yet, closed, another key). Never asks peers (a background render never does).
   */
  renderForPeer(target: RenderTarget, primary: string): Promise<FlightResult | undefined> {
    const started = this.#launch(target, this.#ctx.runner, { join: true, primary });
    if (started === undefined) return Promise.resolve(undefined);
    if (!started.joined) this.#ctx.counters.rendersForPeers++;
    return started.result;
  }

  /**
   * Joins the render of `target`'s key in flight (with `join`), or starts one through `regen`
   * with a ticket. Undefined when nothing can render, or the key is not `options.primary`.
   */
  #launch(
    target: RenderTarget,
    regen: Runner | undefined,
    options: { join: boolean; primary?: string; ask?: OwnerAsk | undefined },
  ): { joined: boolean; result: Promise<FlightResult> } | undefined {
    const ctx = this.#ctx;
    if (regen === undefined || ctx.closed) return undefined;
    const headers: Record<string, string> = { ...target.headers };
    if (target.host !== '') headers.host = target.host;
    const exchange = syntheticExchange({ url: target.url, headers });
    let primary: string | undefined;
    try {
      primary = primaryKey(exchange.req, ctx.options);
    } catch {
      primary = undefined;
    }
    if (primary === undefined || (options.primary !== undefined && primary !== options.primary)) {
      if (primary !== undefined) debug('render for a peer refused: %s is keyed %s, not the key asked', target.url, primary);
      exchange.dispose();
      return undefined;
    }
    const key = this.#variants.keyFor(primary, exchange.req.headers);
    const existing = options.join ? ctx.records.joinable(primary, key, target.url) : undefined;
    if (existing !== undefined) {
      exchange.dispose();
      return { joined: true, result: existing.promise };
    }
    const flight = ctx.records.start(primary, key);
    const ticket: RenderTicket = { kind: 'render', flight, key, primary, used: false };
    this.#tickets.set(exchange.req, ticket);
    debug('regenerate %s', key);
    const { res } = exchange;
    const render = (): void => {
      // A render that never reaches this cache's middleware (or ends before it) must still settle.
      const settleUnused = (): void => {
        if (!ticket.used) ctx.records.settle(primary, key, flight, { outcome: 'abandoned' });
      };
      res.once('finish', settleUnused);
      res.once('close', settleUnused);
      this.#run(regen, exchange.req, res);
    };
    const ask = options.ask;
    if (ask === undefined) render();
    else {
      void ask(exchange.req, primary).then(
        (found) => {
          if (found === undefined || flight.settled) return render();
          ticket.used = true;
          ctx.records.settle(primary, key, flight, { outcome: 'peer', entry: found.entry, key: found.key });
        },
        () => render(),
      );
    }
    return {
      joined: false,
      result: flight.promise.then((result) => {
        exchange.dispose();
        return result;
      }),
    };
  }

  /**
   * Starts one tracked background refresh of a stale `entry`, for the variant `req` selects;
   * resolves when it is done. Under `strategy: 'owner-fetch'` the key's owner is asked first.
   */
  refresh(entry: Entry, req: IncomingMessage, runner: Runner | undefined): Promise<unknown> {
    const done = this.regenerate({ url: entry.url, host: entry.host, headers: varyHeaders(entry, req) }, runner, { ask: this.#ask });
    this.#ctx.report.track(done);
    return done;
  }

  /**
   * Runs a GET through the wrapped app with no client connection and without the response
   * cache (an internal sub-request of the data cache), resolving to what the app answered. The
   * app is `runner`, else the last adapter's; with neither, resolves to a failed capture.
   */
  subrequest(init: SyntheticRequest, runner: Runner | undefined): Promise<CaptureResult> {
    const run = runner ?? this.#ctx.runner;
    if (run === undefined || this.#ctx.closed) return Promise.resolve({ ok: false, reason: 'no handler to run a sub-request (serve a request or wrap a handler first)' });
    const exchange = syntheticExchange(init);
    this.#tickets.set(exchange.req, { kind: 'sub' });
    return new Promise<CaptureResult>((resolve) => {
      captureResponse(exchange.res, { onHeaders: () => true, onDone: resolve }, this.#ctx.options.maxEntrySize);
      this.#run(run, exchange.req, exchange.res);
    }).finally(() => exchange.dispose());
  }

  #run(run: Runner, req: IncomingMessage, res: ServerResponse): void {
    try {
      const r = run(req, res);
      if (isPromise(r)) r.then(undefined, (error: unknown) => this.#failed(res, error));
    } catch (error) {
      this.#failed(res, error);
    }
  }

  #failed(res: ServerResponse, error: unknown): void {
    this.#ctx.report.fail(new RegenerateError('background render threw', { cause: error }));
    if (!res.writableEnded) res.destroy();
  }
}

/** The primary key a background render of `url` on `host` fills (undefined when uncacheable). */
export function primaryOfTarget(url: string, host: string, options: ResolvedOptions): string | undefined {
  const { req, dispose } = syntheticExchange({ url, headers: host === '' ? {} : { host } });
  try {
    return primaryKey(req, options);
  } catch {
    return undefined;
  } finally {
    dispose();
  }
}

/** The request headers a variant depends on, copied for a background render of it. */
function varyHeaders(entry: Entry, req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of entry.vary) {
    const v = req.headers[name];
    if (v !== undefined) out[name] = Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
}
