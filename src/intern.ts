/**
 * The process-wide intern tables stored entries share: atoms (header names, hosts, Vary names)
 * and header pairs whose value is not per response. Both only grow, to a bound, so a number
 * handed out stays valid for the life of the process (the packed form in `stores/pack.ts` stores
 * numbers); past the bound nothing more is interned and callers keep their own strings.
 */

/** Header values that differ from response to response: their pairs are never interned. */
export const PER_RESPONSE: ReadonlySet<string> = new Set(['date', 'etag', 'last-modified', 'content-length', 'expires', 'set-cookie', 'age', 'content-range', 'x-request-id']);

/** Longest string (atom or pair value) interned; longer ones are rarely shared. */
export const MAX_INTERNED_VALUE = 256;

/** Most atoms and most pairs; each table stops growing there. */
const MAX_ATOMS = 16_384;
const MAX_PAIRS = 16_384;

const atomIds = new Map<string, number>();
const atoms: string[] = [];
const pairIds = new Map<string, number>();
const pairs: Array<readonly [string, string]> = [];

/** The atom number of `s`, or -1 when it is long or the table is full. */
export function atomOf(s: string): number {
  if (s.length > MAX_INTERNED_VALUE) return -1;
  let id = atomIds.get(s);
  if (id === undefined) {
    if (atoms.length >= MAX_ATOMS) return -1;
    atomIds.set(s, (id = atoms.length));
    atoms.push(s);
  }
  return id;
}

/** The string of atom `id` (a number {@link atomOf} returned). */
export function atomAt(id: number): string {
  return atoms[id]!;
}

/** `s` itself, or the equal string every entry holding it shares. */
export function shared(s: string): string {
  const id = atomOf(s);
  return id < 0 ? s : atoms[id]!;
}

/** The pair number of `name: value`, or -1 when its value is per response or long, or the table is full. */
export function pairOf(name: string, value: string): number {
  if (PER_RESPONSE.has(name) || value.length > MAX_INTERNED_VALUE) return -1;
  const k = `${name}\n${value}`;
  let id = pairIds.get(k);
  if (id === undefined) {
    if (pairs.length >= MAX_PAIRS) return -1;
    pairIds.set(k, (id = pairs.length));
    pairs.push(Object.freeze([shared(name), value] as [string, string]));
  }
  return id;
}

/** The frozen pair of pair number `id` (one {@link pairOf} returned), shared by every entry holding it. */
export function pairAt(id: number): [string, string] {
  return pairs[id] as [string, string];
}
