/**
 * Cluster membership through the shared Redis tier (`peers.discover: { redis: true }`): one sorted
 * set, `<prefix>{members}:nodes`, holds each node's `peers.self` URL scored by the time its
 * announcement runs out. A heartbeat is one script: add or refresh this node, drop the members
 * whose time ran out, return the rest. Times are Redis's own clock (`TIME`), so the nodes' clocks
 * need not agree. Everything lives in one key (one hash slot `{members}` in a Redis Cluster).
 *
 * Every command goes through the store's {@link GuardedClient}: bounded by `commandTimeout`,
 * skipped while the breaker is open. A failure rejects (the cluster keeps its last list and
 * reports it); a skip resolves to undefined (the last list is kept, nothing reported).
 */
import createDebug from 'debug';
import { SKIPPED, type GuardedClient } from './redis-client.js';
import type { SharedMembers } from './store.js';

const debug = createDebug('stratacache:store');

/**
 * KEYS[1] the set, ARGV[1] this node (or '' to only read), ARGV[2] its lifetime in ms. Scripts may
 * call TIME before writing: their effects, not the script, are replicated (Redis >= 5).
 */
const HEARTBEAT = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[1] ~= '' then redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1]) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZRANGE', KEYS[1], 0, -1)`;

/** KEYS[1] the set, ARGV[1] this node. */
const LEAVE = "return redis.call('ZREM', KEYS[1], ARGV[1])";

/** The nodes announced in one Redis (see the module comment). */
export class RedisMembers implements SharedMembers {
  readonly #guard: GuardedClient;
  /** The one key of the member set. */
  readonly key: string;

  /** `key`: the set's name (`<prefix>{members}:nodes`, see redis-keys.ts). */
  constructor(guard: GuardedClient, key: string) {
    this.#guard = guard;
    this.key = key;
  }

  async announce(self: string, ttl: number): Promise<readonly string[] | undefined> {
    const members = await this.#guard.run('members', (c) => c.eval(HEARTBEAT, 1, this.key, self, ttl));
    if (members === SKIPPED) return undefined;
    if (!Array.isArray(members)) throw new TypeError(`redis heartbeat answered ${typeof members}, not a list`);
    return members.map((m: unknown) => (Buffer.isBuffer(m) ? m.toString() : String(m)));
  }

  async leave(self: string): Promise<void> {
    try {
      await this.#guard.run('members', (c) => c.eval(LEAVE, 1, this.key, self));
    } catch (error) {
      // The others drop this node when its announcement runs out.
      debug('redis leave failed: %s', (error as Error).message);
    }
  }
}
