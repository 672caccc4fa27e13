/**
 * A bounded record of what happened recently, for the operator console: the last invalidations
 * and refetches with their outcome (a ring: the oldest is dropped), and counter samples over the
 * last minutes for its charts. Fed by the cache's own events and by a timer that never keeps the
 * process alive.
 */
import type { EventEmitter } from 'node:events';
import type { InvalidationRecord } from '../invalidation/log.js';
import type { RefetchEvent } from '../invalidation/coordinator.js';
import type { CacheStats } from '../stats.js';

/** One recent invalidation or refetch, as the console lists it. */
export interface RecentEvent {
  /** Epoch ms. */
  at: number;
  kind: 'invalidation' | 'refetch';
  /**
   * Invalidation: `soft` (marked stale), `hard` (removed) or `duplicate` (a publication already
   * applied from another node). Refetch: `stored`, `from-peer` or `failed`.
   */
  outcome: 'soft' | 'hard' | 'duplicate' | 'stored' | 'from-peer' | 'failed';
  /** Paths and `tag:` names invalidated, or the refetched URL. */
  target: string;
  /** Where it came from (`local`, a peer's node URL), the refetch count, or why it failed. */
  detail: string;
}

/** Counter values at one instant; the console charts their differences. */
export interface StatsSample {
  at: number;
  hits: number;
  stale: number;
  peer: number;
  misses: number;
  passes: number;
  background: number;
}

/** How many recent events and samples are kept, and how often a sample is taken. */
export const RECENT_EVENTS = 50;
export const SAMPLE_INTERVAL = 5_000;
export const SAMPLES_KEPT = 120; // 10 minutes

/** A fixed-size ring: pushing past `capacity` drops the oldest. */
export class Ring<T> {
  readonly #items: T[] = [];
  readonly #capacity: number;
  constructor(capacity: number) {
    this.#capacity = capacity;
  }
  push(item: T): void {
    if (this.#items.push(item) > this.#capacity) this.#items.shift();
  }
  /** Oldest first. */
  toArray(): T[] {
    return [...this.#items];
  }
}

/** The counters a sample keeps. */
export function sampleOf(stats: CacheStats, at: number): StatsSample {
  return { at, hits: stats.hits, stale: stats.stale, peer: stats.peerHits, misses: stats.misses, passes: stats.passes, background: stats.regenerations };
}

/** Records recent invalidations and refetches from `events`, and samples `stats` every {@link SAMPLE_INTERVAL}. */
export class Recorder {
  readonly events = new Ring<RecentEvent>(RECENT_EVENTS);
  readonly samples = new Ring<StatsSample>(SAMPLES_KEPT);
  readonly #timer: NodeJS.Timeout;
  readonly #off: () => void;

  constructor(events: EventEmitter, stats: () => CacheStats, now: () => number = Date.now) {
    const onInvalidate = (r: InvalidationRecord): void =>
      this.events.push({
        at: r.at,
        kind: 'invalidation',
        outcome: r.duplicate === true ? 'duplicate' : r.hard ? 'hard' : 'soft',
        target: [...r.paths, ...r.tags.map((t) => `tag:${t}`)].join(' '),
        detail: `${r.origin === 'local' ? 'local' : `from ${r.source?.node ?? 'a peer'}`}${r.refetch.length > 0 ? `, ${r.refetch.length} to refetch` : ''}`,
      });
    const onRefetch = (e: RefetchEvent): void =>
      this.events.push({ at: now(), kind: 'refetch', outcome: e.peer === undefined ? 'stored' : 'from-peer', target: e.url, detail: e.peer ?? e.host });
    const onRefetchError = (e: RefetchEvent): void =>
      this.events.push({ at: now(), kind: 'refetch', outcome: 'failed', target: e.url, detail: e.error instanceof Error ? e.error.message : String(e.error ?? 'stored nothing') });
    events.on('invalidate', onInvalidate);
    events.on('refetch', onRefetch);
    events.on('refetch-error', onRefetchError);
    this.#off = () => {
      events.off('invalidate', onInvalidate);
      events.off('refetch', onRefetch);
      events.off('refetch-error', onRefetchError);
    };
    this.samples.push(sampleOf(stats(), now()));
    this.#timer = setInterval(() => this.samples.push(sampleOf(stats(), now())), SAMPLE_INTERVAL);
    this.#timer.unref();
  }

  /** Stops sampling and listening. */
  close(): void {
    clearInterval(this.#timer);
    this.#off();
  }
}
