/**
 * The names of the keys the Redis store writes, in one place. Two layouts:
 *
 * - **single Redis** (a `url`, or a client that is not a cluster): the names of earlier versions,
 *   unchanged, so upgrading a running deployment keeps its entries, leases and invalidations:
 *   `<prefix>e:<key>`, `<prefix>lease:<key>`, `<prefix>inv` and `<prefix>inv:epoch`;
 * - **Redis Cluster** (`cluster`, or an `ioredis` `Cluster` as `client`): the same names with a
 *   hash tag, so that what one operation touches together lives in one slot while the keys spread
 *   over every slot: a key's entry and its lease share `{<tag>}`, the first 16 hex digits of the
 *   SHA-1 of the key (any characters of the key, `{` and `}` included, make a valid tag that
 *   way): `<prefix>{<tag>}e:<key>` and `<prefix>{<tag>}lease:<key>`; the invalidation stream
 *   and its epoch token share `{inv}`: `<prefix>{inv}` and `<prefix>{inv}:epoch`.
 *
 * The nodes' heartbeats are one sorted set, `<prefix>{members}:nodes`, in both layouts.
 *
 * A cluster's prefix may not contain `{` or `}`: its own hash tag would put every key in one slot.
 */
import { createHash } from 'node:crypto';

/** The names of one store's keys. */
export interface RedisKeyNames {
  /** Where the entry of `key` is stored. */
  entry(key: string): string;
  /** The render lease of `key` (same slot as its entry on a cluster). */
  lease(key: string): string;
  /** The invalidation stream. */
  readonly stream: string;
  /** The stream's epoch token (same slot as the stream on a cluster). */
  readonly epoch: string;
  /** The sorted set of the nodes' heartbeats (`peers.discover: { redis: true }`): one key, tagged `{members}` in both layouts. */
  readonly members: string;
}

/** The key names under `prefix`, hash-tagged when `cluster`. */
export function redisKeyNames(prefix: string, cluster: boolean): RedisKeyNames {
  if (!cluster) {
    return {
      entry: (key) => `${prefix}e:${key}`,
      lease: (key) => `${prefix}lease:${key}`,
      stream: `${prefix}inv`,
      epoch: `${prefix}inv:epoch`,
      members: `${prefix}{members}:nodes`,
    };
  }
  const tag = (key: string): string => createHash('sha1').update(key).digest('hex').slice(0, 16);
  return {
    entry: (key) => `${prefix}{${tag(key)}}e:${key}`,
    lease: (key) => `${prefix}{${tag(key)}}lease:${key}`,
    stream: `${prefix}{inv}`,
    epoch: `${prefix}{inv}:epoch`,
    members: `${prefix}{members}:nodes`,
  };
}
