/**
 * The invalidation log: every invalidation this node applied, with a monotonically increasing id
 * and a non-decreasing timestamp, so a propagation layer can ship the records to peers in order
 * and a peer that was down can ask for everything after the last id it saw.
 */
import type { InvalidationScope } from './epochs.js';

/** One applied invalidation. */
export interface InvalidationRecord {
  /** Increases by one per record on this node, starting at 1. */
  readonly id: number;
  /**
   * When it was applied (epoch ms, possibly fractional: the engine stamps it a fraction of a
   * millisecond after the newest of the clock and earlier invalidations); never decreases between records.
   */
  readonly at: number;
  /** `'local'`: received by this node (API or flush endpoint); `'remote'`: applied from a peer. */
  readonly origin: 'local' | 'remote';
  /** Invalidated paths. */
  readonly paths: readonly string[];
  readonly scope: InvalidationScope;
  readonly hard: boolean;
  /** Invalidated tags. */
  readonly tags: readonly string[];
  /** URIs queued for a background refetch. */
  readonly refetch: readonly string[];
  /**
   * Host used for refetch URIs whose host this node does not know (the flush request's Host);
   * `''` for none. Shipped with the record so peers resolve the same URIs.
   */
  readonly host?: string;
  /** For a record applied from a peer: the node it came from and its id there. */
  readonly source?: { readonly node: string; readonly id: number };
  /**
   * True when an equivalent record from another node was applied here within
   * `DUPLICATE_WINDOW` (the same publication flushed to every node, as AEM does with one flush
   * agent per dispatcher): its epochs were not moved forward and its refetch was not repeated.
   */
  readonly duplicate?: boolean;
}

/** A bounded, ordered log of {@link InvalidationRecord}s. */
export class InvalidationLog {
  readonly #records: InvalidationRecord[] = [];
  readonly #max: number;
  #lastId = 0;
  #lastAt = 0;

  constructor(max = 1000) {
    this.#max = max;
  }

  /** Appends a record stamped `now` (or the previous stamp, if the clock went back). */
  append(body: Omit<InvalidationRecord, 'id' | 'at'>, now: number): InvalidationRecord {
    this.#lastAt = Math.max(now, this.#lastAt);
    const record: InvalidationRecord = Object.freeze({ ...body, id: ++this.#lastId, at: this.#lastAt });
    this.#records.push(record);
    if (this.#records.length > this.#max) this.#records.shift();
    return record;
  }

  /** Records with an id above `id`, oldest first (those still held). */
  since(id: number): InvalidationRecord[] {
    return this.#records.filter((r) => r.id > id);
  }

  /** The id of the oldest record still held (`lastId + 1` when none is held). */
  get oldestId(): number {
    return this.#records[0]?.id ?? this.#lastId + 1;
  }

  /** The id of the last record (0 when none). */
  get lastId(): number {
    return this.#lastId;
  }
}
