/**
 * Per-peer circuit breaker: closed (requests pass) -> open after `failureThreshold` consecutive
 * failures (requests skip the peer) -> half-open once `coolDown` has passed (exactly one probe
 * passes) -> closed when the probe succeeds, open again for another `coolDown` when it fails.
 * The clock is injectable so tests need no sleeps.
 */

/** Breaker states, as reported in `cache.stats().peers`. */
export type BreakerState = 'closed' | 'open' | 'half-open';

/** What {@link CircuitBreaker.allow} granted. */
export type Grant = false | 'pass' | 'probe';

/** Options of {@link CircuitBreaker}. */
export interface BreakerOptions {
  /** Consecutive failures that open the breaker (>= 1). */
  failureThreshold: number;
  /** Time in ms an open breaker waits before letting one probe through. */
  coolDown: number;
  /** Current time in epoch ms. @default Date.now */
  now?: () => number;
}

/** One peer's breaker. Call {@link allow} before a request, then exactly one of success/failure/release. */
export class CircuitBreaker {
  readonly #threshold: number;
  readonly #coolDown: number;
  readonly #now: () => number;
  #failures = 0;
  #openedAt = -1;
  #probing = false;

  constructor(options: BreakerOptions) {
    this.#threshold = options.failureThreshold;
    this.#coolDown = options.coolDown;
    this.#now = options.now ?? Date.now;
  }

  /** The state now (an open breaker whose cool-down has passed reads as half-open). */
  get state(): BreakerState {
    if (this.#openedAt < 0) return 'closed';
    return this.#probing || this.#now() - this.#openedAt >= this.#coolDown ? 'half-open' : 'open';
  }

  /** Consecutive failures counted so far. */
  get failures(): number {
    return this.#failures;
  }

  /**
   * May a request go to this peer now? `false`: skip it. `'pass'`: the breaker is closed.
   * `'probe'`: the single half-open probe (everyone else is refused until it reports).
   */
  allow(): Grant {
    if (this.#openedAt < 0) return 'pass';
    if (this.#probing || this.#now() - this.#openedAt < this.#coolDown) return false;
    this.#probing = true;
    return 'probe';
  }

  /** The peer answered properly (hit or miss): close. */
  success(): void {
    this.#failures = 0;
    this.#openedAt = -1;
    this.#probing = false;
  }

  /** The peer failed (error, timeout, bad reply): count; open at the threshold, or re-open after a failed probe. */
  failure(): void {
    this.#failures++;
    if (this.#probing || this.#failures >= this.#threshold) {
      this.#openedAt = this.#now();
      this.#probing = false;
    }
  }

  /** A granted request ended with no verdict (cancelled because another peer answered first). */
  release(grant: Grant): void {
    if (grant === 'probe') this.#probing = false;
  }
}
