/**
 * The invalidation API of one cache: validates what to invalidate, stamps it with an epoch,
 * appends it to the log, tells the hooks and listeners, and queues its refetch list (once per
 * cluster, see `publications.ts`); primes a node. Also the verdict every other part asks: does
 * an invalidation reach this entry?
 */
import createDebug from 'debug';
import type { Entry } from '../entry.js';
import { HandlerError, RegenerateError, type CacheError } from '../errors.js';
import type { WireRecord } from '../peers/propagation.js';
import type { Runner } from '../seam.js';
import type { ResponseCounters } from '../stats.js';
import type { EpochVerdict, Epochs, InvalidationScope } from './epochs.js';
import type { FlushRequest } from './flush-endpoint.js';
import { InvalidationLog, type InvalidationRecord } from './log.js';
import type { Publications } from './publications.js';
import { prime, Refetcher, type PrimeProgress, type RefetchSummary, type RefetchTarget } from './refetch.js';
import { tagOption, targetOption, type TargetIndex } from './targets.js';
import { traced, tracing, type FlushContext } from '../observe/tracing.js';

const debug = createDebug('stratacache:invalidation');

/**
 * How far past the clock (or the previous invalidation) an invalidation is stamped: 2^-10 ms is
 * exact in a double at today's epoch-ms magnitudes and keeps the wall-clock millisecond for up to
 * 1023 invalidations within one millisecond.
 */
const EPOCH_STEP = 1 / 1024;

/** Payload of the `refetch` and `refetch-error` events. */
export interface RefetchEvent {
  url: string;
  host: string;
  key: string;
  /** Why it failed (`refetch-error` only). */
  error?: unknown;
  /** Base URL of the peer that refetched it, when this node took the peer's copy instead of rendering. */
  peer?: string;
}

/** What to invalidate (see {@link InvalidationCoordinator.invalidate}). */
export interface InvalidationInput {
  paths?: readonly string[];
  scope?: InvalidationScope;
  hard?: boolean;
  tags?: readonly string[];
  /** URIs (path and query, or absolute http(s) URLs) to render again in the background. */
  refetch?: readonly string[];
}

/** What {@link InvalidationCoordinator.invalidate} did. */
export interface InvalidationResult {
  /** The log record (its id orders invalidations on this node). */
  record: InvalidationRecord;
  /** Settles when every queued refetch settled (never rejects). */
  refetched: Promise<RefetchSummary>;
}

/** Where an invalidation comes from (see {@link InvalidationCoordinator.invalidate}). */
export interface InvalidationContext {
  origin?: 'local' | 'remote';
  host?: string;
  at?: number;
  node?: string;
  source?: { node: string; id: number };
}

/** What the coordinator is built with. */
export interface CoordinatorParts {
  epochs: Epochs;
  targets: TargetIndex;
  counters: ResponseCounters;
  /** This node's base URL (`peers.self`), naming it in publications. */
  self: string | undefined;
  refetchConcurrency: number;
  /** Renders a target in the background (with `runner`, else the last adapter's). */
  regenerate(target: { url: string; host: string }, runner?: Runner, options?: { fresh?: boolean }): Promise<Entry | undefined>;
  /** Builds the publications tracker around this coordinator's refetcher. */
  publications(refetcher: Refetcher): Publications;
  report: { fail(error: CacheError): void; emit(event: string, payload: unknown): void; listens(event: string): boolean; track(p: Promise<unknown>): void };
}

/** Applies invalidations and answers whether one reaches an entry. */
export class InvalidationCoordinator {
  /** The invalidation log (ids increase by one; `since(id)` returns what a peer missed). */
  readonly log = new InvalidationLog();
  readonly refetcher: Refetcher;
  readonly publications: Publications;
  readonly #parts: CoordinatorParts;
  readonly #epochs: Epochs;
  readonly #hooks = new Set<(record: InvalidationRecord) => void>();
  readonly #applied: Array<(record: InvalidationRecord, refetched: Promise<RefetchSummary>) => void> = [];

  constructor(parts: CoordinatorParts) {
    this.#parts = parts;
    this.#epochs = parts.epochs;
    this.refetcher = new Refetcher(parts.refetchConcurrency, {
      // A refetch renders after the flush that asked for it: it never joins a render already in flight.
      render: (t) => parts.regenerate({ url: t.url, host: t.host }, undefined, { fresh: true }),
      settled: (t, entry, error) => this.#refetchSettled(t, entry, error),
    });
    this.publications = parts.publications(this.refetcher);
  }

  /** The newest invalidation that reaches `entry`, or undefined (one comparison while none is newer than it). */
  verdict(entry: Entry): EpochVerdict | undefined {
    return this.#epochs.check(entry);
  }

  /**
   * True when `entry` was stored before an invalidation that reaches it (its path, an ancestor
   * within statLevel, one of its tags; all read from the entry itself). The peer layer refuses
   * such a copy from a peer. O(depth).
   */
  isInvalidated(entry: Entry): boolean {
    return entry.storedAt < this.#epochs.newest && this.#epochs.check(entry) !== undefined;
  }

  /**
   * The `storedAt` for a render or load starting now: the clock, but never before the newest
   * invalidation already applied, so something started after an invalidation (even within its
   * millisecond) is at or after its epoch, and something started before it is older.
   */
  renderTime(): number {
    return Math.max(Date.now(), this.#epochs.newest);
  }

  /**
   * Whether an invalidation applied since `startedAt` (the invalidation clock, see
   * {@link renderTime}) may cover a render of `url` begun then: such a render is joined by no
   * later request and served to nobody as fresh.
   */
  coversRender(url: string, startedAt: number): boolean {
    return this.#epochs.coversSince(url, startedAt);
  }

  /** True while a refetch of `primary` is queued or rendering here. */
  refetchPending(primary: string): boolean {
    return this.refetcher.has(primary);
  }

  /**
   * Registers a hook called synchronously with every applied invalidation record, local or
   * remote (a propagation layer ships the local ones). Returns a function that unregisters it.
   */
  onInvalidate(hook: (record: InvalidationRecord) => void): () => void {
    this.#hooks.add(hook);
    return () => this.#hooks.delete(hook);
  }

  /**
   * Registers a hook called with every applied record and the promise of its refetches (settled
   * once each refetched page is stored here, or failed): the CDN fan-out purges after it, so the
   * CDN refills from the new page.
   */
  onApplied(hook: (record: InvalidationRecord, refetched: Promise<RefetchSummary>) => void): void {
    this.#applied.push(hook);
  }

  /**
   * Applies an invalidation: records its epochs (entries it reaches turn stale; `hard` ones are
   * gone), appends it to the log, tells `onInvalidate` hooks and `invalidate` listeners, and
   * queues its refetch list. Never deletes the live cache wholesale. `host` is used for refetch
   * URIs whose host is unknown (no entry was stored for them). A record received from a peer is
   * applied with `origin: 'remote'` and the `at` it had there, so the copies that peer rendered
   * after it are accepted here (refetch once per cluster) while older ones are refused.
   *
   * Cluster-wide: a record with the same content as one another node sent within the duplicate
   * window is the same publication (one flush per dispatcher): logged and reported, but no new
   * epoch and no second refetch (see `publications.ts`). `context.node` is the base URL of the
   * node a remote record came from.
   * @throws TypeError when a path, tag or URI is malformed (nothing is applied then).
   */
  invalidate(input: InvalidationInput, context: InvalidationContext = {}): InvalidationResult {
    if (!tracing.flush.hasSubscribers) return this.#invalidate(input, context);
    const span: FlushContext = {
      paths: input.paths ?? [],
      tags: input.tags ?? [],
      refetch: input.refetch ?? [],
      hard: input.hard === true,
      origin: context.origin ?? 'local',
    };
    return traced(tracing.flush, span, () => {
      const result = this.#invalidate(input, context);
      span.id = result.record.id;
      return result;
    });
  }

  #invalidate(input: InvalidationInput, context: InvalidationContext): InvalidationResult {
    // Invalidation works on paths: an absolute URL counts for its path on every host.
    const paths = (input.paths ?? []).map((p, i) => {
      const v = targetOption(p, `paths[${i}]`);
      return v.startsWith('/') ? v : new URL(v).pathname;
    });
    const tags = [...(input.tags ?? [])];
    tags.forEach((t, i) => tagOption(t, `tags[${i}]`));
    const refetch = [...(input.refetch ?? [])];
    refetch.forEach((u, i) => targetOption(u, `refetch[${i}]`));
    const scope = input.scope ?? 'tree';
    if (scope !== 'tree' && scope !== 'resource') throw new TypeError(`expected scope to be 'resource' or 'tree', got ${JSON.stringify(scope)}`);
    const hard = input.hard === true;
    // Strictly after every render already started (their storedAt is at most max(now, newest)),
    // and at or before every render starting from now on: no same-millisecond ambiguity.
    const localAt = Math.max(Date.now(), this.#epochs.newest) + EPOCH_STEP;
    // A peer's time may move the epoch back (it happened earlier there), never ahead of ours: a
    // peer with a fast clock must not make every local render count as older than it.
    const remote = context.origin === 'remote' && typeof context.at === 'number' && Number.isFinite(context.at);
    const at = remote ? Math.min(context.at!, localAt) : localAt;
    const { group, duplicate } = this.publications.classify({ paths, scope, hard, tags, refetch }, { at, node: context.node ?? this.#parts.self ?? '' });
    const host = context.host ?? '';
    const record = this.log.append(
      {
        origin: context.origin ?? 'local',
        paths,
        scope,
        hard,
        tags,
        refetch,
        host,
        ...(context.source === undefined ? {} : { source: context.source }),
        ...(duplicate ? { duplicate } : {}),
      },
      at,
    );
    if (paths.length > 0 || tags.length > 0) {
      // A duplicate's epoch would only move the publication's epoch forward past copies already
      // rendered after it (by the node refetching them): skipped.
      if (!duplicate) this.#epochs.record({ paths, scope, hard, tags }, at);
      this.#parts.counters.invalidations++;
    }
    debug('invalidation #%d: %s %s refetch %d', record.id, paths.join(' '), tags.join(' '), refetch.length);
    const report = this.#parts.report;
    for (const hook of this.#hooks) {
      try {
        hook(record);
      } catch (error) {
        report.fail(new HandlerError('onInvalidate hook threw', { cause: error }));
      }
    }
    report.emit('invalidate', record);
    const targets = duplicate ? [] : this.#parts.targets.resolve(refetch, host);
    const refetched = targets.length === 0 ? Promise.resolve({ ok: 0, failed: 0 }) : this.publications.refetch(targets, group);
    report.track(refetched);
    for (const hook of this.#applied) hook(record, refetched);
    return { record, refetched };
  }

  /** Applies a record received from a peer (see `Propagator.receive`). */
  applyRemote(record: WireRecord, from: { node: string; origin: string }): void {
    this.invalidate(
      { paths: record.paths, scope: record.scope, hard: record.hard, tags: record.tags, refetch: record.refetch },
      { origin: 'remote', at: record.at, host: record.host, node: from.node, source: { node: from.origin, id: record.id } },
    );
  }

  /** Applies a flush endpoint request (see `FlushEndpoint`). */
  applyFlush(request: FlushRequest, host: string): { id: number; refetch: number } {
    const { record } = this.invalidate(request, { host });
    return { id: record.id, refetch: record.refetch.length };
  }

  /**
   * Renders URLs in the background and stores them (priming a node before it goes live), at
   * most `concurrency` at once. Never rejects; failures are counted in the summary.
   */
  prime(
    urls: readonly string[],
    options: { concurrency?: number; host?: string; handler?: Runner; onProgress?: (progress: PrimeProgress) => void } = {},
  ): Promise<RefetchSummary> {
    urls.forEach((u, i) => targetOption(u, `urls[${i}]`));
    return prime(this.#parts.targets.resolve(urls, options.host ?? ''), {
      concurrency: options.concurrency ?? this.#parts.refetchConcurrency,
      render: (t) => this.#parts.regenerate({ url: t.url, host: t.host }, options.handler),
      onProgress: options.onProgress,
    });
  }

  /** A copy of a refetched page was taken from the peer that refetched it. */
  tookCopy(target: RefetchTarget, peer: string): void {
    this.#parts.report.emit('refetch', { url: target.url, host: target.host, key: target.primary, peer } satisfies RefetchEvent);
  }

  #refetchSettled(target: RefetchTarget, entry: Entry | undefined, error: unknown): void {
    const payload: RefetchEvent = { url: target.url, host: target.host, key: target.primary };
    const { counters, report } = this.#parts;
    if (entry !== undefined) {
      counters.refetches++;
      debug('refetched %s', target.primary);
      report.emit('refetch', payload);
      return;
    }
    counters.refetchErrors++;
    debug('refetch failed %s', target.primary);
    if (report.listens('refetch-error')) report.emit('refetch-error', { ...payload, error: error ?? new RegenerateError(`refetch of ${target.url} stored nothing`) });
  }
}
