/**
 * One record per primary key: everything the engine knows of a key between requests, in one map
 * (lru-cache keeps an in-flight fetch in the key's own slot; so does this). A record holds
 * - the renders in flight, one per variant key (leader, waiters through the flight's promise,
 *   and the invalidation time it started at: `startedAt`);
 * - hit-for-miss memory (why the key's last response was not storable, until when);
 * - the failing backoff (a render failed and a stale copy answered, until when);
 * - the background refresh under way (one per variant key, for this node and, with a shared
 *   tier, for the nodes sharing it).
 * Queued refetches and the peers' refetches stay with the invalidation coordinator (they are per
 * flush, not per request), and the Vary spec with the Vary map of the tiers (`variants.ts`);
 * `decide()` reads both through the request flags.
 *
 * A record with nothing live in it is removed; the map is bounded (`max`): past it, the oldest
 * records without a flight are dropped (their memories are hints, a flight is not).
 */
import { deferred } from '../flight.js';
import type { Flight, FlightResult } from './outcome.js';

/** Everything the engine knows of one primary key. */
interface KeyRecord {
  /** Renders in flight by variant key (usually one). */
  flights: Map<string, Flight> | undefined;
  /** Hit-for-miss: why the last response was not storable, and until when (epoch ms). */
  pass: string | undefined;
  passUntil: number;
  /** The origin failed for this key (a stale copy answered) until this time (epoch ms). */
  failingUntil: number;
  /** Variant keys with a background refresh under way. */
  refreshing: Set<string> | undefined;
}

/** Options of {@link KeyRecords}. */
export interface KeyRecordsOptions {
  /** How long (ms) a key whose response was not storable renders without a flight; 0: never. */
  passTtl: number;
  /** How long (ms) after a failed render its stale copy answers without asking the origin; 0: never. */
  errorBackoff: number;
  /**
   * Whether an invalidation since `startedAt` covers a render of `url` begun then (see
   * `InvalidationCoordinator.coversRender`). @default never
   */
  covers?: (url: string, startedAt: number) => boolean;
  /** The invalidation clock a flight's `startedAt` is read from. @default Date.now */
  renderTime?: () => number;
  /** Most records kept. @default 100000 */
  max?: number;
  /** The clock (epoch ms). @default Date.now */
  now?: () => number;
}

/** The per-key records of one engine. */
export class KeyRecords {
  readonly #records = new Map<string, KeyRecord>();
  readonly #passTtl: number;
  readonly #errorBackoff: number;
  readonly #max: number;
  readonly #now: () => number;
  readonly #covers: (url: string, startedAt: number) => boolean;
  readonly #renderTime: () => number;
  /** Flights in progress (all keys). */
  #inFlight = 0;

  constructor(options: KeyRecordsOptions) {
    this.#passTtl = options.passTtl;
    this.#errorBackoff = options.errorBackoff;
    this.#max = options.max ?? 100_000;
    this.#now = options.now ?? Date.now;
    this.#covers = options.covers ?? (() => false);
    this.#renderTime = options.renderTime ?? Date.now;
  }

  /** The render in flight for the variant `key` of `primary`, if any. */
  flight(primary: string, key: string): Flight | undefined {
    return this.#records.get(primary)?.flights?.get(key);
  }

  /**
   * The render in flight for `key` that a request for `url` may join: none when the one in
   * flight began before an invalidation that covers it (that request leads a new one instead).
   */
  joinable(primary: string, key: string, url: string): Flight | undefined {
    const flight = this.flight(primary, key);
    return flight === undefined || this.#covers(url, flight.startedAt) ? undefined : flight;
  }

  /** Number of renders in flight. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /**
   * Starts the flight of `key`, begun now on the invalidation clock (`startedAt`, see
   * `InvalidationCoordinator.renderTime`). A flight already there is replaced: its own
   * waiters keep it and get its outcome, later requests join this one (used when the old one
   * began before an invalidation that covers it, or before the refetch that asks for this one).
   */
  start(primary: string, key: string): Flight {
    const record = this.#record(primary);
    const flight: Flight = Object.assign(deferred<FlightResult>(), { startedAt: this.#renderTime(), settled: false });
    record.flights ??= new Map();
    if (!record.flights.has(key)) this.#inFlight++;
    record.flights.set(key, flight);
    return flight;
  }

  /**
   * Ends `flight` with `result`: its waiters get it. The key is freed only if it still belongs to
   * this flight, so a late settle never removes a newer flight. Settling twice does nothing.
   */
  settle(primary: string, key: string, flight: Flight, result: FlightResult): void {
    if (flight.settled) return;
    flight.settled = true;
    const record = this.#records.get(primary);
    if (record?.flights?.get(key) === flight) {
      record.flights.delete(key);
      this.#inFlight--;
      if (record.flights.size === 0) record.flights = undefined;
      this.#sweep(primary, record);
    }
    flight.resolve(result);
  }

  /** Why `primary` is remembered as uncacheable (hit-for-miss), while it is. */
  passReason(primary: string): string | undefined {
    const record = this.#records.get(primary);
    if (record?.pass === undefined) return undefined;
    if (this.#now() < record.passUntil) return record.pass;
    record.pass = undefined;
    this.#sweep(primary, record);
    return undefined;
  }

  /** Remembers that `primary`'s response is not storable for anyone (for `passTtl`). */
  rememberPass(primary: string, reason: string): void {
    if (this.#passTtl <= 0) return;
    const record = this.#record(primary);
    record.pass = reason;
    record.passUntil = this.#now() + this.#passTtl;
  }

  /** A storable response ends hit-for-miss and the failing backoff. */
  stored(primary: string): void {
    const record = this.#records.get(primary);
    if (record === undefined) return;
    record.pass = undefined;
    record.failingUntil = 0;
    this.#sweep(primary, record);
  }

  /** Whether a render of `primary` failed within `errorBackoff` (its stale copy answers meanwhile). */
  failing(primary: string): boolean {
    const record = this.#records.get(primary);
    return record !== undefined && this.#now() < record.failingUntil;
  }

  /** A render of `primary` failed and its stale copy answered: the backoff starts. */
  rememberFailing(primary: string): void {
    if (this.#errorBackoff <= 0) return;
    this.#record(primary).failingUntil = this.#now() + this.#errorBackoff;
  }

  /** Claims the background refresh of `key`: false when one is already under way. */
  beginRefresh(primary: string, key: string): boolean {
    const record = this.#record(primary);
    record.refreshing ??= new Set();
    if (record.refreshing.has(key)) return false;
    record.refreshing.add(key);
    return true;
  }

  /** The background refresh of `key` is over. */
  endRefresh(primary: string, key: string): void {
    const record = this.#records.get(primary);
    if (record?.refreshing === undefined) return;
    record.refreshing.delete(key);
    if (record.refreshing.size === 0) record.refreshing = undefined;
    this.#sweep(primary, record);
  }

  /** Number of records held (for tests and stats). */
  get size(): number {
    return this.#records.size;
  }

  #record(primary: string): KeyRecord {
    let record = this.#records.get(primary);
    if (record === undefined) {
      record = { flights: undefined, pass: undefined, passUntil: 0, failingUntil: 0, refreshing: undefined };
      this.#records.set(primary, record);
      if (this.#records.size > this.#max) this.#evict();
    }
    return record;
  }

  /** Removes a record with nothing live left in it. */
  #sweep(primary: string, record: KeyRecord): void {
    if (record.flights !== undefined || record.refreshing !== undefined) return;
    const now = this.#now();
    if ((record.pass === undefined || now >= record.passUntil) && now >= record.failingUntil) this.#records.delete(primary);
  }

  /** Drops the oldest records that hold no flight and no refresh until the map is within bounds. */
  #evict(): void {
    for (const [primary, record] of this.#records) {
      if (this.#records.size <= this.#max) return;
      if (record.flights === undefined && record.refreshing === undefined) this.#records.delete(primary);
    }
  }
}
