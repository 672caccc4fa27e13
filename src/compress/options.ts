/**
 * Validation of `options.compress` (types and defaults in `compress/settings.ts`), once at
 * construction.
 */
import { describeValue, integerOption } from '../options/validate.js';
import type { Coding } from './negotiate.js';
import { COMPRESS_DEFAULTS, ZSTD_AVAILABLE, type CompressOptions, type ResolvedCompressOptions } from './settings.js';

const CODINGS: readonly Coding[] = ['br', 'gzip', 'zstd'];
const LEVEL_RANGE: Record<Coding, [number, number]> = { br: [0, 11], gzip: [1, 9], zstd: [1, 22] };
const KNOWN = new Set(Object.keys(COMPRESS_DEFAULTS));

/**
 * Validates `options.compress`, naming `options.compress.<field>` in every error.
 * @throws TypeError or RangeError naming the option path and the value it got.
 */
export function resolveCompressOptions(value: unknown): ResolvedCompressOptions | undefined {
  if (value === false || value === undefined) return undefined;
  const given: CompressOptions =
    value === true ? { encodings: ZSTD_AVAILABLE ? ['br', 'zstd', 'gzip'] : ['br', 'gzip'] } : (value as CompressOptions);
  if (given === null || typeof given !== 'object' || Array.isArray(given)) throw new TypeError(`expected options.compress to be a boolean or an object, got ${describeValue(value)}`);
  for (const name of Object.keys(given)) if (!KNOWN.has(name)) throw new TypeError(`unknown option options.compress.${name}`);
  const encodings = given.encodings ?? COMPRESS_DEFAULTS.encodings;
  if (!Array.isArray(encodings)) throw new TypeError(`expected options.compress.encodings to be an array of 'br', 'gzip' or 'zstd', got ${describeValue(encodings)}`);
  encodings.forEach((c: unknown, i) => {
    if (!CODINGS.includes(c as Coding)) throw new TypeError(`expected options.compress.encodings[${i}] to be 'br', 'gzip' or 'zstd', got ${describeValue(c)}`);
    if (c === 'zstd' && !ZSTD_AVAILABLE) throw new RangeError(`expected options.compress.encodings[${i}] to be a coding this Node (${process.version}) has: zstd needs Node 22.15 or later, got 'zstd'`);
    if (encodings.indexOf(c as Coding) !== i) throw new RangeError(`expected options.compress.encodings[${i}] to be listed once, got ${describeValue(c)} again`);
  });
  if (encodings.length === 0) return undefined;
  const types = given.types ?? COMPRESS_DEFAULTS.types;
  if (!Array.isArray(types) || types.length === 0) throw new TypeError(`expected options.compress.types to be a non-empty array of media types, got ${describeValue(types)}`);
  const patterns = types.map((t: unknown, i) => {
    if (typeof t !== 'string' || !/^[a-z0-9*!#$&^_.+-]+\/[a-z0-9*!#$&^_.+-]+$/i.test(t)) throw new TypeError(`expected options.compress.types[${i}] to be a media type like 'text/*', got ${describeValue(t)}`);
    return new RegExp(`^${t.toLowerCase().replace(/[.+^$]/g, '\\$&').replace(/\*/g, '[^/]*')}$`);
  });
  const level = { ...COMPRESS_DEFAULTS.level, ...(given.level ?? {}) };
  if (given.level !== undefined && (given.level === null || typeof given.level !== 'object')) throw new TypeError(`expected options.compress.level to be an object, got ${describeValue(given.level)}`);
  for (const name of Object.keys(level)) {
    const range = LEVEL_RANGE[name as Coding];
    if (range === undefined) throw new TypeError(`unknown option options.compress.level.${name}`);
    integerOption(`compress.level.${name}`, level[name as Coding], range[0], range[1]);
  }
  return Object.freeze({
    encodings: Object.freeze([...encodings]),
    minSize: integerOption('compress.minSize', given.minSize ?? COMPRESS_DEFAULTS.minSize, 0),
    types: (mediaType: string) => patterns.some((p) => p.test(mediaType)),
    level: Object.freeze(level),
  });
}
