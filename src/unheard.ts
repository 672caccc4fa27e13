/**
 * Errors nobody listens to are not silent: with no `error` listener on the cache, an internal
 * failure (a handler that throws, a store that fails or cannot start) is written to stderr, as
 * Express's default error handler does, but once per distinct message in a window and a bounded
 * number of lines per window, so a failing origin cannot flood the log. Skipped when
 * `NODE_ENV=test`, as Express does.
 */

/** Where and how often unheard errors are written. */
export interface UnheardOptions {
  /** Writes one line (default: stderr). */
  write?: (line: string) => void;
  /** The clock, in ms (default: `Date.now`). */
  now?: () => number;
  /** How long in ms a message is not repeated, and the span of the line budget. @default 60000 */
  window?: number;
  /** Lines written per window at most; one more line then says some were held back. @default 10 */
  maxLines?: number;
}

/** Writes unheard errors to stderr, once per distinct message per window, bounded. */
export class UnheardErrors {
  readonly #write: (line: string) => void;
  readonly #now: () => number;
  readonly #window: number;
  readonly #maxLines: number;
  /** Message -> when it was last written. */
  readonly #seen = new Map<string, number>();
  #windowStart = -Infinity;
  #lines = 0;
  #held = 0;

  constructor(options: UnheardOptions = {}) {
    this.#write = options.write ?? ((line) => void process.stderr.write(`${line}\n`));
    this.#now = options.now ?? Date.now;
    this.#window = options.window ?? 60_000;
    this.#maxLines = options.maxLines ?? 10;
  }

  /** Reports `error` (a CacheError with a `code`, its original failure as `cause`). */
  report(error: Error & { code?: string }): void {
    if (process.env.NODE_ENV === 'test') return;
    const now = this.#now();
    if (now - this.#windowStart >= this.#window) {
      if (this.#held > 0) this.#write(`stratacache: ${this.#held} more error line(s) held back in the last ${Math.round(this.#window / 1000)} s`);
      this.#windowStart = now;
      this.#lines = 0;
      this.#held = 0;
    }
    const cause = error.cause instanceof Error ? error.cause : undefined;
    const message = `${error.code ?? error.name}: ${error.message}${cause !== undefined ? `: ${cause.message}` : ''}`;
    const last = this.#seen.get(message);
    if (last !== undefined && now - last < this.#window) return;
    if (this.#lines >= this.#maxLines) {
      this.#held++;
      return;
    }
    this.#seen.set(message, now);
    if (this.#seen.size > 1_000) this.#seen.delete(this.#seen.keys().next().value as string);
    this.#lines++;
    // Where it came from: the cause's first stack frame, as a pointer into the user's code.
    const at = cause?.stack?.split('\n').find((l) => /^\s+at /.test(l))?.trim();
    this.#write(`stratacache: ${message}${at !== undefined ? ` (${at})` : ''} [no 'error' listener on the cache; the same message is not repeated for ${Math.round(this.#window / 1000)} s]`);
  }
}
