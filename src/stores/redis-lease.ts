/**
 * Cross-node single flight through Redis. Before rendering a cold key, a flight leader takes a
 * short lease, `SET <prefix>lease:<key> <node> NX PX <leaseTtl>` (on a Redis Cluster in the slot of
 * the key's entry: see redis-keys.ts):
 *
 * - taken: this node renders; the entry it stores reaches Redis like any write, then the lease
 *   is released (only if still its own: a compare-and-delete script);
 * - held by another node: this node polls Redis for the entry (20 ms, doubling to 200 ms) and
 *   serves it when it appears; when the lease disappears without an entry (the response was not
 *   storable, or its holder died and the lease expired) or `leaseWait` passes, it renders itself;
 * - Redis unavailable: it renders itself, as without Redis.
 *
 * Trace the lease guards against: nodes A, B, C get the same cold URL at once; A's SET NX wins,
 * B's and C's fail; A renders and stores (SET entry, then DEL lease); B and C find the entry on
 * their next poll. One render for three nodes.
 */
import type { Entry } from '../entry.js';
import { SKIPPED, type GuardedClient } from './redis-client.js';
import type { RenderLeases } from './store.js';


const RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

/** Render leases of one Redis store. */
export class RedisLeases implements RenderLeases {
  /** Leases this node took (it rendered for the nodes sharing Redis). */
  acquired = 0;
  /** Another node's render ended with its entry, found while waiting or right after taking the lease (no render here). */
  waitHits = 0;
  readonly #guard: GuardedClient;
  readonly #name: (key: string) => string;
  readonly #node: string;
  readonly #ttl: number;
  readonly #wait: number;
  readonly #read: (key: string) => Promise<Entry | undefined>;

  constructor(guard: GuardedClient, options: { name: (key: string) => string; node: string; ttl: number; wait: number; read: (key: string) => Promise<Entry | undefined> }) {
    this.#guard = guard;
    this.#name = options.name;
    this.#node = options.node;
    this.#ttl = options.ttl;
    this.#wait = options.wait;
    this.#read = options.read;
  }

  /** Tries to take the lease of `key`. */
  async acquire(key: string): Promise<'lead' | 'held' | 'unavailable'> {
    const reply = await this.#guard.run('lease', (c) => c.set(this.#name(key), this.#node, 'PX', this.#ttl, 'NX')).catch(() => SKIPPED);
    if (reply === SKIPPED) return 'unavailable';
    if (reply !== 'OK') return 'held';
    this.acquired++;
    return 'lead';
  }

  /** Gives the lease of `key` back, if this node still holds it. Never rejects. */
  async release(key: string): Promise<void> {
    await this.#guard.run('unlease', (c) => c.eval(RELEASE, 1, this.#name(key), this.#node)).catch(() => undefined);
  }

  /** Reads `entryKey` once more after taking the lease (see {@link RenderLeases.recheck}). */
  async recheck(entryKey: string, accept: (entry: Entry) => boolean): Promise<Entry | undefined> {
    const entry = await this.#read(entryKey).catch(() => undefined);
    if (entry === undefined || !accept(entry)) return undefined;
    this.waitHits++;
    return entry;
  }

  /**
   * Waits for the node holding the lease of `key` to store an entry `accept` takes (read under
   * `entryKey`). Undefined when the lease went away without one, Redis failed, or `leaseWait`
   * passed: the caller renders itself.
   */
  async waitFor(key: string, entryKey: string, accept: (entry: Entry) => boolean): Promise<Entry | undefined> {
    const deadline = Date.now() + this.#wait;
    let delay = 20;
    while (Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, Math.min(delay, Math.max(0, deadline - Date.now()))));
      delay = Math.min(delay * 2, 200);
      const entry = await this.#read(entryKey).catch(() => undefined);
      if (entry !== undefined && accept(entry)) {
        this.waitHits++;
        return entry;
      }
      const held = await this.#guard.run('lease?', (c) => c.getBuffer(this.#name(key))).catch(() => SKIPPED);
      if (held === SKIPPED || held === null) {
        // Gone: its holder stored (read once more: the entry may have landed just before) or gave up.
        const last = await this.#read(entryKey).catch(() => undefined);
        if (last !== undefined && accept(last)) {
          this.waitHits++;
          return last;
        }
        return undefined;
      }
    }
    return undefined;
  }
}
