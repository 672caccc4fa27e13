/**
 * Data flights: one load in flight per data key, joined by later callers (single flight, as
 * groupcache's), each knowing the tags it carries and whether an invalidation covering its key
 * arrived while it ran. Built here rather than on `flight.ts`'s `Flights` because a data flight
 * must leave its key when it is invalidated, so that a caller arriving after the invalidation
 * starts a new load instead of joining one begun before it.
 *
 * Event trace of the race this closes (issue 18): A calls get(k) and its loader starts (reads
 * v1) -> cache.invalidateTags(['t']) (or delete(k), or a key the loader read changes) -> the
 * flight is marked and detached from k -> B calls get(k): a new flight, a new load (v2) -> A's
 * loader settles with v1: A (and every caller that joined before the invalidation) gets v1 as
 * the answer to a call made before it; v1 is not stored (hard: delete) or stored already stale
 * (soft: tag, dependency), never over B's newer value; a page that read k is stored stale.
 */
import type { Outcome } from './types.js';

/** How an invalidation reached a flight: `'hard'` (delete, hard tag) wins over `'soft'`. */
export type FlightInvalidation = 'hard' | 'soft';

/** One load in flight. */
export class DataFlight {
  readonly key: string;
  readonly promise: Promise<Outcome>;
  /** The tags its value will carry (a loader may change them while it runs). */
  tags: () => readonly string[];
  /** Set when an invalidation covering the key arrived while it ran. */
  invalidated: FlightInvalidation | undefined = undefined;
  readonly #resolve: (outcome: Outcome) => void;

  constructor(key: string, tags: readonly string[]) {
    this.key = key;
    this.tags = () => tags;
    let resolve!: (outcome: Outcome) => void;
    this.promise = new Promise<Outcome>((r) => (resolve = r));
    this.#resolve = resolve;
  }

  /** Marks the flight invalidated (a hard invalidation is never downgraded to soft). */
  mark(how: FlightInvalidation): void {
    if (this.invalidated !== 'hard') this.invalidated = how;
  }

  /** @internal Settles the flight (by {@link DataFlights.run}). */
  settle(outcome: Outcome): void {
    this.#resolve(outcome);
  }
}

/** The flights of the data cache, by data key. */
export class DataFlights {
  readonly #flights = new Map<string, DataFlight>();

  /** Whether a load of `k` that later callers may join is in flight. */
  has(k: string): boolean {
    return this.#flights.has(k);
  }

  /**
   * Joins the flight of `k`, or starts one running `load`. A load that throws settles the flight
   * with `recover(error)`, so no caller waits forever. The key is freed when the flight settles,
   * unless it was detached by an invalidation (a newer flight may hold it then).
   */
  run(
    k: string,
    tags: readonly string[],
    load: (flight: DataFlight) => Promise<Outcome>,
    recover: (error: unknown) => Outcome,
  ): { flight: DataFlight; joined: boolean } {
    const existing = this.#flights.get(k);
    if (existing !== undefined) return { flight: existing, joined: true };
    const flight = new DataFlight(k, tags);
    this.#flights.set(k, flight);
    void Promise.resolve()
      .then(() => load(flight))
      .then(
        (outcome) => this.#settle(flight, outcome),
        (error: unknown) => this.#settle(flight, recover(error)),
      );
    return { flight, joined: false };
  }

  /** Keys with a flight in progress. */
  keys(): IterableIterator<string> {
    return this.#flights.keys();
  }

  /** An invalidation covers `k`: its flight (if any) is marked and detached. True when one was. */
  invalidate(k: string, how: FlightInvalidation): boolean {
    const flight = this.#flights.get(k);
    if (flight === undefined) return false;
    this.detach(flight, how);
    return true;
  }

  /** Marks `flight` and frees its key for a new flight (if it still holds it). */
  detach(flight: DataFlight, how: FlightInvalidation): void {
    flight.mark(how);
    if (this.#flights.get(flight.key) === flight) this.#flights.delete(flight.key);
  }

  /** Tags were invalidated: the flights carrying one are marked and detached; returns their keys. */
  invalidateTagged(tags: ReadonlySet<string>, how: FlightInvalidation): string[] {
    const reached: string[] = [];
    for (const [k, flight] of this.#flights) if (flight.tags().some((t) => tags.has(t))) reached.push(k);
    for (const k of reached) this.invalidate(k, how);
    return reached;
  }

  #settle(flight: DataFlight, outcome: Outcome): void {
    if (this.#flights.get(flight.key) === flight) this.#flights.delete(flight.key);
    flight.settle(outcome);
  }
}
