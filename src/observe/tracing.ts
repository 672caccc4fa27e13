/**
 * Tracing channels (`node:diagnostics_channel` `tracingChannel`) for the steps of the cache, so
 * OpenTelemetry or any APM can make spans without stratacache depending on it (the pattern of
 * undici and lru-cache). Each channel publishes `start`, `end`, and for asynchronous work
 * `asyncStart`/`asyncEnd`, plus `error`, with one context object per operation: fields set while
 * it runs (the status of a lookup, the outcome of a peer call) are on it at `end`/`asyncEnd`.
 *
 * Nothing is published, and no context object is built, while a channel has no subscriber: every
 * call site checks `channel.hasSubscribers` first.
 */
import diagnostics from 'node:diagnostics_channel';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CacheStore } from '../stores/store.js';

/** The channel names, one per step. */
export const CHANNELS = Object.freeze({
  /** One cacheable request: from its key to its cache status (HIT, MISS, STALE, PEER, PASS). */
  lookup: 'stratacache:lookup',
  /** One origin render: for a client (the flight leader) or in the background. */
  render: 'stratacache:render',
  /** One lookup sent to one peer. */
  peer: 'stratacache:peer',
  /** One store operation (get, set, delete) on one tier. */
  store: 'stratacache:store',
  /** One invalidation applied (API, flush endpoint, tags, or a peer's). */
  flush: 'stratacache:flush',
});

/** Fields every span context has. */
export interface SpanContext {
  /**
   * Set before `end` when the step goes on asynchronously: its span then ends at `asyncEnd`.
   * Unset when it answered synchronously (a memory hit): the span ends at `end`.
   */
  async?: boolean;
  /** Set when the step threw or rejected (published on `error` too). */
  error?: unknown;
}

/** Context of `stratacache:lookup`. */
export interface LookupContext extends SpanContext {
  /** The variant key (the primary key when the URL never varied). */
  key: string;
  url: string;
  method: string;
  /** Set when known: the cache status the request was answered with. */
  status?: string;
}

/** Context of `stratacache:render`. */
export interface RenderContext extends SpanContext {
  key: string;
  url: string;
  /** True for a render without a client connection (refresh, refetch, priming). */
  background: boolean;
  /** Set at the end: the response status, and whether the entry was stored. */
  statusCode?: number;
  stored?: boolean;
}

/** Context of `stratacache:peer`. */
export interface PeerCallContext extends SpanContext {
  /** The peer's base URL. */
  peer: string;
  /** The key asked for (a primary key, or a data key `v:…`/`u:…`). */
  key: string;
  /** Set at the end: `hit`, `miss`, `error` or `aborted`. */
  outcome?: string;
}

/** Context of `stratacache:store`. */
export interface StoreContext extends SpanContext {
  /** The store's `name` (`memory`, `disk`, ...). */
  tier: string;
  op: 'get' | 'set' | 'delete';
  key: string;
  /** Set at the end of a `get`: whether it found an entry. */
  found?: boolean;
}

/** Context of `stratacache:flush`. */
export interface FlushContext extends SpanContext {
  paths: readonly string[];
  tags: readonly string[];
  refetch: readonly string[];
  hard: boolean;
  /** `local` (API, flush endpoint) or `remote` (a peer's record). */
  origin: 'local' | 'remote';
  /** Set at the end: the id of the record in this node's invalidation log. */
  id?: number;
}

/**
 * The part of a `TracingChannel` the cache publishes on. Declared here rather than named from
 * `@types/node`, whose `TracingChannel` type parameters changed order between versions, so the
 * published declarations type-check against every `@types/node` the package supports.
 */
interface Channel<C extends object> {
  readonly hasSubscribers: boolean;
  readonly start: { runStores<R>(context: C, fn: () => R): R };
  readonly end: { publish(context: C): void };
  readonly asyncStart: { publish(context: C): void };
  readonly asyncEnd: { publish(context: C): void };
  readonly error: { publish(context: C): void };
}

/** The tracing channel named `name`, seen through {@link Channel}. */
function channel<C extends object>(name: string): Channel<C> {
  return diagnostics.tracingChannel<unknown, C>(name);
}

/** The tracing channels, created once per process (diagnostics channels are global by name). */
export const tracing = Object.freeze({
  lookup: channel<LookupContext>(CHANNELS.lookup),
  render: channel<RenderContext>(CHANNELS.render),
  peer: channel<PeerCallContext>(CHANNELS.peer),
  store: channel<StoreContext>(CHANNELS.store),
  flush: channel<FlushContext>(CHANNELS.flush),
});

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof (v as { then?: unknown } | null)?.then === 'function';
}

/**
 * Runs `fn` inside a span of `channel` with `context`: `start`, then `end` when `fn` returns, and
 * when it returns a promise `asyncStart`/`asyncEnd` when that settles (`error` before them on a
 * throw or rejection, with `context.error` set), as `TracingChannel.tracePromise` does, but for
 * functions that answer synchronously or with a promise (the memory tier, the hit path).
 * Call it only when `channel.hasSubscribers`.
 */
export function traced<C extends SpanContext, R>(channel: Channel<C>, context: C, fn: () => R): R {
  return channel.start.runStores(context, () => {
    let result: R;
    try {
      result = fn();
    } catch (error) {
      context.error = error;
      channel.error.publish(context);
      channel.end.publish(context);
      throw error;
    }
    if (!isThenable(result)) {
      channel.end.publish(context);
      return result;
    }
    context.async = true;
    channel.end.publish(context);
    return Promise.resolve(result).then(
      (value) => {
        channel.asyncStart.publish(context);
        channel.asyncEnd.publish(context);
        return value;
      },
      (error: unknown) => {
        context.error = error;
        channel.error.publish(context);
        channel.asyncStart.publish(context);
        channel.asyncEnd.publish(context);
        throw error;
      },
    ) as R;
  });
}

/** The lookup span of each response being answered while `stratacache:lookup` has subscribers. */
const lookups = new WeakMap<object, LookupContext>();

/** Runs the lookup of one request (from its key on) inside a `stratacache:lookup` span. */
export function traceLookup<R>(req: IncomingMessage, res: ServerResponse, key: string, fn: () => R): R {
  const context: LookupContext = { key, url: req.url ?? '', method: req.method ?? '' };
  lookups.set(res, context);
  return traced(tracing.lookup, context, fn);
}

/** Records the cache status written on `res` in its lookup span, if one is open. */
export function noteStatus(res: object, status: string): void {
  if (!tracing.lookup.hasSubscribers) return;
  const context = lookups.get(res);
  if (context !== undefined) context.status = status;
}

/** Runs one store operation inside a `stratacache:store` span (`found` set for a get). */
export function traceStore<R>(store: CacheStore, op: StoreContext['op'], key: string, fn: () => R): R {
  const context: StoreContext = { tier: store.name, op, key };
  return traced(tracing.store, context, () => {
    const r = fn();
    if (op !== 'get') return r;
    if (!isThenable(r)) {
      context.found = r !== undefined;
      return r;
    }
    return Promise.resolve(r).then((entry) => {
      context.found = entry !== undefined;
      return entry;
    }) as R;
  });
}

/**
 * Opens a `stratacache:render` span that ends when `finish` is called (a render ends when its
 * response is complete and stored or not, after the handler returned). `run` starts the render
 * inside the span, so what the handler does asynchronously belongs to it.
 */
export function traceRender<R>(context: RenderContext, run: (finish: () => void) => R): R {
  let result!: R;
  void traced(tracing.render, context, () => new Promise<void>((finish) => (result = run(finish))));
  return result;
}
