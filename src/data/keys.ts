/**
 * Data keys: values of get() and responses of fetch() never collide, and which deletion names
 * (see DataDeletions) cover a key.
 */
import { normalizeTarget } from '../key.js';

/** Key prefix of a value stored by get(). */
export const VALUE = 'v:';
/** Key prefix of a response stored by fetch(). */
export const URLKEY = 'u:';
/** Prefix of a deletion name covering a path fetched from any host (see DataDeletions). */
export const PATHNAME = 'p:';

/**
 * The deletion names covering data key `k` (see DataDeletions): the key itself, and for a
 * fetched response its URL with any request headers, or for a sub-request its path on any host.
 */
export function deletionNames(k: string): string[] {
  if (!k.startsWith(URLKEY)) return [k];
  if (k.startsWith(URLKEY + '//')) return [k, PATHNAME + pathOf(k)];
  return [k, k.split('\n', 1)[0]!];
}

/** The path of a relative fetch key (`u://host/path`), or of a request target. */
export function pathOf(target: string): string {
  if (target.startsWith(URLKEY + '//')) {
    const rest = target.slice(URLKEY.length + 2).split('\n', 1)[0]!;
    const slash = rest.indexOf('/');
    return slash === -1 ? '/' : rest.slice(slash);
  }
  return normalizeTarget(target, undefined) ?? target;
}
