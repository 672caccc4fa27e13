/**
 * A store given as a promise of one: `stores: [redisStore({ url })]` without `await`. Every
 * operation waits for the store (in call order, so operations on one key still apply in order);
 * a store that never comes (ioredis missing, bad options) is reported once, by the first operation
 * to find out (the engine counts and emits it), and the tier is skipped from then on.
 */
import type { Entry } from '../entry.js';
import type { CacheStore, RenderLeases, SharedInvalidations, SharedMembers } from './store.js';

/** The lower tier a promised store stands in for. */
export class PendingStore implements CacheStore {
  #store: CacheStore | undefined;
  #failure: Error | undefined;
  #reported = false;
  readonly #ready: Promise<CacheStore | undefined>;
  readonly leases: RenderLeases;
  readonly invalidations: SharedInvalidations;
  readonly members: SharedMembers;

  constructor(promise: PromiseLike<unknown>, path: string) {
    this.#ready = Promise.resolve(promise).then(
      (store) => {
        const s = store as CacheStore | null | undefined;
        if (!s || typeof s.get !== 'function' || typeof s.set !== 'function' || typeof s.delete !== 'function') {
          this.#failure = new TypeError(`expected ${path} to resolve to a store with get, set and delete`);
          return undefined;
        }
        this.#store = s;
        return s;
      },
      (error: unknown) => {
        this.#failure = error instanceof Error ? error : new Error(String(error));
        return undefined;
      },
    );
    const ready = this.#ready;
    // A store without leases (or none at all) answers as a node alone would.
    this.leases = {
      acquire: async (key) => (await ready)?.leases?.acquire(key) ?? 'unavailable',
      release: async (key) => (await ready)?.leases?.release(key),
      waitFor: async (key, entryKey, accept) => (await ready)?.leases?.waitFor(key, entryKey, accept),
      recheck: async (entryKey, accept) => (await ready)?.leases?.recheck(entryKey, accept),
    };
    this.invalidations = {
      publish: (record) => void ready.then((s) => s?.invalidations?.publish(record)),
      start: (apply) => void ready.then((s) => s?.invalidations?.start(apply)),
    };
    // A store without members (or none at all) keeps the last list.
    this.members = {
      announce: async (self, ttl) => (await ready)?.members?.announce(self, ttl),
      leave: async (self) => (await ready)?.members?.leave(self),
    };
  }

  /** The store's own name once it is there. */
  get name(): string {
    return this.#store?.name ?? 'pending';
  }

  async get(key: string): Promise<Entry | undefined> {
    return (await this.#use())?.get(key);
  }

  async open(key: string): Promise<Entry | undefined> {
    const store = await this.#use();
    return store?.open === undefined ? store?.get(key) : store.open(key);
  }

  async set(key: string, entry: Entry): Promise<void> {
    await (await this.#use())?.set(key, entry);
  }

  async delete(key: string): Promise<void> {
    await (await this.#use())?.delete(key);
  }

  size(): { entries: number; bytes: number } {
    return this.#store?.size?.() ?? { entries: 0, bytes: 0 };
  }

  stats(): object {
    return this.#store?.stats?.() ?? {};
  }

  async close(): Promise<void> {
    await (await this.#ready)?.close?.();
  }

  /** The store, or undefined when it never came: the first caller to find out gets the reason. */
  async #use(): Promise<CacheStore | undefined> {
    const store = await this.#ready;
    if (store === undefined && !this.#reported) {
      this.#reported = true;
      throw this.#failure!;
    }
    return store;
  }
}
