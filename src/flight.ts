/**
 * The deferred promise flights are made of (the engine keeps its flights in its per-key records,
 * `engine/records.ts`; the data cache in `data/flights.ts`), and a bounded wait for background
 * work.
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
