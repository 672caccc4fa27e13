/**
 * Refetching flush and priming: URIs rendered in the background with bounded concurrency
 * (p-limit). While a URI waits or renders, the engine keeps serving its old copy; the new entry
 * replaces it atomically when the render is stored; a failed render leaves the old copy as it was.
 */
import createDebug from 'debug';
import pLimit from 'p-limit';
import type { Entry } from '../entry.js';
import type { Count } from '../options/units.js';

const debug = createDebug('stratacache:refetch');

/** One URI to render in the background, resolved to the host and primary key it is cached under. */
export interface RefetchTarget {
  /** Request target (path and query). */
  url: string;
  /** Host header to render with (`''` for none). */
  host: string;
  /** Primary cache key the render fills. */
  primary: string;
}

/** How a batch of background renders went. */
export interface RefetchSummary {
  /** Renders that stored an entry. */
  ok: Count;
  /** Renders that failed or stored nothing (the old copy stays). */
  failed: Count;
}

/** Progress of a prime, after each URL settles. */
export interface PrimeProgress {
  /** URLs settled so far. */
  done: Count;
  /** URLs in the batch. */
  total: Count;
  url: string;
  /** Whether this URL was stored. */
  ok: boolean;
}

/**
 * Renders targets with at most `concurrency` at once and reports progress: warming a node's
 * cache before it goes live. Never rejects; failures are counted.
 */
export async function prime(
  targets: readonly RefetchTarget[],
  options: { concurrency: Count; render(target: RefetchTarget): Promise<Entry | undefined>; onProgress?: ((p: PrimeProgress) => void) | undefined },
): Promise<RefetchSummary> {
  const limit = pLimit(options.concurrency);
  let done = 0;
  let ok = 0;
  await Promise.all(
    targets.map((target) =>
      limit(async () => {
        let entry: Entry | undefined;
        try {
          entry = await options.render(target);
        } catch {
          entry = undefined;
        }
        done++;
        if (entry !== undefined) ok++;
        debug('primed %s: %s', target.primary, entry !== undefined ? 'ok' : 'failed');
        options.onProgress?.({ done, total: targets.length, url: target.url, ok: entry !== undefined });
      }),
    ),
  );
  return { ok, failed: targets.length - ok };
}

/** What the refetcher needs from the engine. */
export interface RefetchContext {
  /** Renders a target in the background; resolves to the stored entry or undefined. */
  render(target: RefetchTarget): Promise<Entry | undefined>;
  /** Called once per target when its render settled. */
  settled(target: RefetchTarget, entry: Entry | undefined, error?: unknown): void;
}

/** A refetch of one key: queued, then rendering. */
interface Job {
  promise: Promise<boolean>;
  /** Its render began: a refetch asked for now must render again after it. */
  started: boolean;
}

/**
 * A queue of background renders, at most `concurrency` at once, one per primary key at a time.
 * A key asked for again while it is still queued renders once; asked for again while its render
 * runs (that render may predate the new flush), it renders once more after it, so the last flush
 * always gets a render that began after it.
 */
export class Refetcher {
  readonly #limit: ReturnType<typeof pLimit>;
  readonly #ctx: RefetchContext;
  readonly #pending = new Map<string, Job>();

  constructor(concurrency: Count, ctx: RefetchContext) {
    this.#limit = pLimit(concurrency);
    this.#ctx = ctx;
  }

  /** True while `primary` is queued or rendering: its old copy must stay servable. */
  has(primary: string): boolean {
    return this.#pending.size > 0 && this.#pending.has(primary);
  }

  /** Number of targets queued or rendering. */
  get pending(): Count {
    return this.#pending.size;
  }

  /** Queues targets; resolves when all of them settled. */
  async run(targets: readonly RefetchTarget[]): Promise<RefetchSummary> {
    const results = await Promise.all(targets.map((t) => this.#enqueue(t)));
    const ok = results.filter(Boolean).length;
    return { ok, failed: results.length - ok };
  }

  #enqueue(target: RefetchTarget): Promise<boolean> {
    const existing = this.#pending.get(target.primary);
    if (existing !== undefined && !existing.started) return existing.promise;
    debug(existing === undefined ? 'queue %s' : 'queue %s again, after the render under way', target.primary);
    const job: Job = { promise: Promise.resolve(false), started: false };
    const render = (): Promise<boolean> =>
      this.#limit(async () => {
        job.started = true;
        let entry: Entry | undefined;
        let error: unknown;
        try {
          entry = await this.#ctx.render(target);
        } catch (e) {
          error = e;
        }
        // Settle before leaving the pending set: a request arriving in between must find the new entry.
        this.#ctx.settled(target, entry, error);
        return entry !== undefined;
      });
    job.promise = (existing === undefined ? render() : existing.promise.then(render, render)).finally(() => {
      if (this.#pending.get(target.primary) === job) this.#pending.delete(target.primary);
    });
    this.#pending.set(target.primary, job);
    return job.promise;
  }
}
