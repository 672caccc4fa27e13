/**
 * The data cache's lower tiers (`options.data.stores` after its memory store): values and
 * sub-responses written through to them, looked up there on a memory miss before the peers or
 * the loader, removed with them. A store's failure is reported, never thrown: the load goes on.
 */
import type { Entry } from '../entry.js';
import { StoreError } from '../errors.js';
import { isPromise, type CacheStore } from '../stores/store.js';

/** Lower tiers of the data cache, fastest first. */
export class DataTiers {
  readonly #stores: readonly CacheStore[];
  readonly #fail: (error: StoreError) => void;
  readonly #pending = new Set<Promise<unknown>>();

  constructor(stores: readonly CacheStore[], fail: (error: StoreError) => void) {
    this.#stores = stores;
    this.#fail = fail;
  }

  /** True when there is no lower tier (the hot path then skips every call). */
  get empty(): boolean {
    return this.#stores.length === 0;
  }

  /** The first entry under `k` that `accept` takes, from the fastest tier that has one. */
  async find(k: string, accept: (entry: Entry) => boolean): Promise<Entry | undefined> {
    for (const store of this.#stores) {
      try {
        const entry = await store.get(k);
        if (entry !== undefined && Date.now() < entry.expiresAt && accept(entry)) return entry;
      } catch (error) {
        this.#fail(new StoreError(`${store.name}.get failed`, { cause: error }));
      }
    }
    return undefined;
  }

  /** Writes `entry` under `k` to every lower tier, in the background. */
  write(k: string, entry: Entry): void {
    for (const store of this.#stores) this.#run(store, 'set', () => store.set(k, entry));
  }

  /** Removes `k` from every lower tier, in the background. */
  remove(k: string): void {
    for (const store of this.#stores) this.#run(store, 'delete', () => store.delete(k));
  }

  /** Waits for pending writes, then closes the stores not in `shared` (closed by the response side). */
  async close(shared: readonly CacheStore[]): Promise<void> {
    await Promise.allSettled([...this.#pending]);
    for (const store of this.#stores) {
      if (shared.includes(store)) continue;
      try {
        await store.close?.();
      } catch (error) {
        this.#fail(new StoreError(`${store.name}.close failed`, { cause: error }));
      }
    }
  }

  #run(store: CacheStore, what: string, op: () => unknown): void {
    try {
      const r = op();
      if (!isPromise(r)) return;
      const p = r.catch((error: unknown) => this.#fail(new StoreError(`${store.name}.${what} failed`, { cause: error })));
      this.#pending.add(p);
      void p.finally(() => this.#pending.delete(p));
    } catch (error) {
      this.#fail(new StoreError(`${store.name}.${what} failed`, { cause: error }));
    }
  }
}
