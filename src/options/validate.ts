/**
 * Validation helpers shared by every area's option resolver: each error names the option path
 * and the value it got ("expected options.peers.timeout to be a positive integer, got 'fast'").
 * A leaf: imports no other part of the cache.
 */
import { isIP } from 'node:net';

/** A predicate on a name (ignored query parameters, cookies, paths). */
export type NamePredicate = (name: string) => boolean;

/** Describes a bad value for an error message: strings quoted, objects by kind. */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return `'${value}'`;
  if (typeof value === 'function') return 'a function';
  if (Array.isArray(value)) return 'an array';
  if (value === null) return 'null';
  if (typeof value === 'object') return 'an object';
  return String(value);
}

/**
 * Throws `kind` naming `options.<path>`, what was expected and what it got. The options object
 * itself has the empty path: "expected options to be an object".
 */
export function fail(kind: typeof TypeError | typeof RangeError, path: string, expected: string, got: unknown): never {
  throw new kind(`expected options${path === '' ? '' : `.${path}`} to be ${expected}, got ${describeValue(got)}`);
}

/** Checks that `value` is a plain object (not null, not an array) naming `options.<path>`. */
export function objectOption(path: string, value: unknown, expected = 'an object'): asserts value is object {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) fail(TypeError, path, expected, value);
}

/**
 * Refuses a field of `value` that `defaults` does not have: every option has its default in
 * `DEFAULTS`, so the defaults are the list of known names.
 */
export function knownOptions(path: string, value: object, defaults: object): void {
  for (const name of Object.keys(value)) {
    if (!Object.hasOwn(defaults, name)) throw new TypeError(`unknown option options.${path === '' ? '' : `${path}.`}${name}`);
  }
}

/** `o` without its undefined fields (so spreading it over defaults keeps the defaults). */
export function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}

/** Validates an integer option: TypeError when not a number, RangeError when out of range. */
export function integerOption(path: string, value: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const expected = min === 0 ? 'a non-negative integer' : min === 1 ? 'a positive integer' : `an integer >= ${min}`;
  if (typeof value !== 'number' || Number.isNaN(value)) fail(TypeError, path, expected, value);
  if (!Number.isInteger(value) || value < min) fail(RangeError, path, expected, value);
  if (value > max) fail(RangeError, path, `at most ${max}`, value);
  return value;
}

/** Validates an optional function option. */
export function functionOption<F>(path: string, value: unknown): F | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'function') fail(TypeError, path, 'a function', value);
  return value as F;
}

/** Validates a list of strings and lower-cases them (header names). */
export function headerNamesOption(path: string, value: unknown): string[] {
  if (!Array.isArray(value)) fail(TypeError, path, 'an array of header names', value);
  return value.map((v, i) => {
    if (typeof v !== 'string' || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(v)) fail(TypeError, `${path}[${i}]`, 'a header name', v);
    return v.toLowerCase();
  });
}

/** Turns `*` globs into one predicate; exact names are looked up in a Set. */
export function globPredicate(path: string, patterns: readonly unknown[]): NamePredicate | undefined {
  const exact = new Set<string>();
  const globs: RegExp[] = [];
  patterns.forEach((p, i) => {
    if (typeof p !== 'string' || p === '') fail(TypeError, `${path}[${i}]`, 'a non-empty string', p);
    if (p.includes('*')) {
      const source = p.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*');
      globs.push(new RegExp(`^${source}$`));
    } else exact.add(p);
  });
  if (exact.size === 0 && globs.length === 0) return undefined;
  return (name) => exact.has(name) || globs.some((g) => g.test(name));
}

/** True for `a.b.c.d`, an IPv6 address, or either followed by `/prefix` in range. */
export function isAddressOrCidr(value: string): boolean {
  const slash = value.indexOf('/');
  const address = slash === -1 ? value : value.slice(0, slash);
  const family = isIP(address);
  if (family === 0) return false;
  if (slash === -1) return true;
  const prefix = value.slice(slash + 1);
  return /^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128);
}
