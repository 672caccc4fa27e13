/**
 * Single flight: one in-flight computation per key, which later callers join instead of starting
 * their own (groupcache's `singleflight`), for the data cache; and the deferred promise the
 * engine's flights are made of too (the engine keeps them in its per-key records,
 * `engine/records.ts`).
 */

/** A promise with its resolver exposed, settled by whoever leads the flight. */
export interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
}

/** A promise and its resolver. The promise never rejects: a leader reports failure in `T`. */
export function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** A map of flights by key. */
export class Flights<T> {
  readonly #flights = new Map<string, Deferred<T>>();

  /** The flight in progress for `key`, if any. */
  get(key: string): Deferred<T> | undefined {
    return this.#flights.get(key);
  }

  has(key: string): boolean {
    return this.#flights.has(key);
  }

  /** Starts a flight for `key` (replacing none: callers check {@link get} first). */
  start(key: string): Deferred<T> {
    const flight = deferred<T>();
    this.#flights.set(key, flight);
    return flight;
  }

  /**
   * Ends `flight` with `value`. The key is freed only if it still belongs to this flight, so a
   * late settle never removes a newer flight for the same key.
   */
  settle(key: string, flight: Deferred<T>, value: T): void {
    if (this.#flights.get(key) === flight) this.#flights.delete(key);
    flight.resolve(value);
  }

  /**
   * Runs `load` as the leader of `key`, or joins the flight in progress. `joined` tells the
   * caller whether it waited for another caller's load (for `loadsDeduped`). A load that throws
   * or rejects settles the flight with `recover(error)`, so no joiner ever waits forever.
   */
  run(key: string, load: () => Promise<T>, recover: (error: unknown) => T): { promise: Promise<T>; joined: boolean } {
    const existing = this.#flights.get(key);
    if (existing !== undefined) return { promise: existing.promise, joined: true };
    const flight = this.start(key);
    void Promise.resolve()
      .then(load)
      .then(
        (value) => this.settle(key, flight, value),
        (error: unknown) => this.settle(key, flight, recover(error)),
      );
    return { promise: flight.promise, joined: false };
  }
}

/**
 * Waits until every promise settled, or `ms` passed (whichever is first); true when all settled.
 * What is still running then is abandoned, not cancelled: its result is simply never awaited.
 */
export async function settledWithin(promises: readonly Promise<unknown>[], ms: number): Promise<boolean> {
  if (promises.length === 0) return true;
  const all = Promise.allSettled(promises).then(() => true);
  if (!Number.isFinite(ms)) return all;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => {
    // Not unref'd: whoever awaits this (close()) must get its answer, not a process that exits
    // mid-await because only unref'd timers were left.
    timer = setTimeout(() => resolve(false), Math.max(0, ms));
  });
  try {
    return await Promise.race([all, late]);
  } finally {
    clearTimeout(timer);
  }
}
