/**
 * Reporting for the parts of one cache: events only when someone listens, internal failures
 * counted, logged and emitted (never thrown; on stderr, bounded, when nobody listens), and
 * background promises tracked so `close()` can wait for them.
 */
import type { EventEmitter } from 'node:events';
import type { CacheError } from './errors.js';
import { UnheardErrors } from './unheard.js';
import { settledWithin } from './flight.js';

/**
 * The part of a `debug` logger a Reporter uses. Declared here rather than imported from `debug`
 * so the published declarations do not need `@types/debug`.
 */
export type DebugLog = (formatter: string, ...args: unknown[]) => void;

/** Emits events, reports failures and tracks background work for one cache. */
export class Reporter {
  readonly #events: EventEmitter;
  readonly #debug: DebugLog;
  readonly #count: (error: CacheError) => void;
  readonly #background = new Set<Promise<unknown>>();
  /** Failures nobody listens to go to stderr, bounded (see {@link UnheardErrors}); undefined: silent. */
  readonly #unheard: UnheardErrors | undefined;

  /**
   * `count` is called once per failure (each cache counts its own `errors`). `unheard: false`
   * keeps failures nobody listens to off stderr, for a part whose failures already reach a
   * caller (a data loader's error is its caller's to report).
   */
  constructor(events: EventEmitter, debug: DebugLog, count: (error: CacheError) => void, at: { unheard?: boolean } = {}) {
    this.#events = events;
    this.#debug = debug;
    this.#count = count;
    this.#unheard = at.unheard === false ? undefined : new UnheardErrors();
  }

  /** Whether anyone listens to `event` (to skip building a payload nobody reads). */
  listens(event: string): boolean {
    return this.#events.listenerCount(event) > 0;
  }

  /** Emits `event` when someone listens. */
  emit(event: string, payload: unknown): void {
    if (this.#events.listenerCount(event) > 0) this.#events.emit(event, payload);
  }

  /** Counts and reports an internal failure; never throws, never fails a response. */
  fail(error: CacheError): void {
    this.#count(error);
    this.#debug('error %s: %s', error.code, error.message);
    if (this.#events.listenerCount('error') > 0) this.#events.emit('error', error);
    // Silence would hide a broken handler or store: written like Express's default handler, bounded.
    else this.#unheard?.report(error);
  }

  /** Keeps `p` until it settles, so {@link settled} can wait for it. */
  track(p: Promise<unknown>): void {
    this.#background.add(p);
    void p.finally(() => this.#background.delete(p));
  }

  /**
   * Settles once every tracked promise did, or after `waitMs` (what still runs is abandoned:
   * its result is never stored). Resolves to whether everything settled.
   */
  settled(waitMs = Infinity): Promise<boolean> {
    return settledWithin([...this.#background], waitMs);
  }
}
