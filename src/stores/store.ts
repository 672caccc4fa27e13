/**
 * The one small contract every storage tier implements. Methods may answer synchronously (the
 * memory tier does, so a hit costs no promise) or with a promise (disk, remote).
 */
import type { Entry } from '../entry.js';

/** A value or a promise of it. */
export type MaybePromise<T> = T | Promise<T>;

/** A storage tier: memory, disk, or anything else with these three operations. */
export interface CacheStore {
  /** A short name for stats and errors. */
  readonly name: string;
  /** The entry under `key`, or undefined. Must not throw for a missing key. */
  get(key: string): MaybePromise<Entry | undefined>;
  /** Stores `entry` under `key`, replacing any previous one atomically (a reader sees old or new). */
  set(key: string, entry: Entry): MaybePromise<void>;
  /** Removes `key`; removing a missing key is not an error. */
  delete(key: string): MaybePromise<void>;
  /** Entries and bytes held, when the store can tell cheaply. */
  size?(): { entries: number; bytes: number };
  /** Releases resources (timers, file handles). */
  close?(): MaybePromise<void>;
}

/** True when a value is a promise (or thenable), so callers can stay synchronous otherwise. */
export function isPromise<T>(v: MaybePromise<T>): v is Promise<T> {
  return typeof (v as { then?: unknown } | undefined)?.then === 'function';
}
