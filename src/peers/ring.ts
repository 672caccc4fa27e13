/**
 * Rendezvous (highest random weight) hashing: the owner of a key is the node whose
 * hash(node, key) is highest. Every node computes the same owner from the same member list, and
 * removing a node moves only the keys it owned (each to its runner-up); no virtual nodes needed.
 * The hash is injectable, as in groupcache's `consistenthash.New(replicas, fn)`.
 */
import { createHash } from 'node:crypto';

/** Maps a string to a non-negative integer weight (at most 2^53 - 1). */
export type HashFunction = (input: string) => number;

/** Default weight: the first 48 bits of MD5 (spread matters here, not secrecy). */
export const defaultHash: HashFunction = (input) => createHash('md5').update(input).digest().readUIntBE(0, 6);

/** A set of nodes and the rendezvous owner of any key among them. */
export class Rendezvous {
  readonly nodes: readonly string[];
  readonly #hash: HashFunction;

  /** `nodes`: the whole cluster, this node included, so that every member agrees on owners. */
  constructor(nodes: readonly string[], hash: HashFunction = defaultHash) {
    this.nodes = [...new Set(nodes)];
    this.#hash = hash;
  }

  /**
   * The node owning `key`, or undefined for an empty ring. Ties go to the smaller node string.
   * With `include`, only the nodes it accepts compete (the owner among live nodes).
   */
  owner(key: string, include?: (node: string) => boolean): string | undefined {
    let best: string | undefined;
    let bestWeight = -1;
    for (const node of this.nodes) {
      if (include !== undefined && !include(node)) continue;
      const w = this.#hash(`${node}\n${key}`);
      if (w > bestWeight || (w === bestWeight && best !== undefined && node < best)) {
        best = node;
        bestWeight = w;
      }
    }
    return best;
  }
}
