/**
 * What an operator types, checked: sizes and durations with units (`64mb`, `1gib`, `10s`, `1h`,
 * `250ms`) parsed into the library's units (bytes, milliseconds; a bare number is refused, as its
 * unit would be a guess), flags, and the one-line {@link UsageError} every mistake becomes.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

/** A user mistake in a flag or config field: printed as one line, exit status 1, no stack. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

const SIZE_UNITS: Record<string, number> = { b: 1, k: 1024, kb: 1024, kib: 1024, m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3, gib: 1024 ** 3 };
const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, min: 60_000, h: 3_600_000, d: 86_400_000 };

/** What an error says the accepted forms are. */
const SIZE_FORMS = 'a unit: b, kb, mb or gb (64mb, 512kb, 1gb)';
const DURATION_FORMS = 'a unit: ms, s, m, h or d (500ms, 10s, 5m, 1h)';

/**
 * The number a value with a unit stands for, in the unit's base (bytes, ms). A bare number is
 * refused (`--grace 10`: seconds to an nginx user, ms to the library), except `0`, which is the
 * same in every unit. `undefined` when the value is not of the form.
 */
function withUnit(units: Record<string, number>, value: unknown): number | undefined {
  if (value === 0 || value === '0') return 0;
  if (typeof value !== 'string') return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s*$/i.exec(value);
  if (m === null) return undefined;
  const factor = units[m[2]!.toLowerCase()];
  return factor === undefined ? undefined : Math.round(Number(m[1]) * factor);
}

/** The end of a unit error: what was given, and a word when it was a bare number. */
function got(value: unknown): string {
  const bare = typeof value === 'number' || (typeof value === 'string' && /^\s*\d+(?:\.\d+)?\s*$/.test(value));
  return `got ${show(value)}${bare ? ' (a bare number has no unit)' : ''}`;
}

/**
 * Bytes from `64mb`, `512KiB`, `1g`, `100b` (units are powers of 1024). A bare number is refused
 * (but `0`). @throws UsageError naming `field` and the units.
 */
export function parseSize(field: string, value: unknown): number {
  const n = withUnit(SIZE_UNITS, value);
  if (n === undefined) throw new UsageError(`expected ${field} to be a size with ${SIZE_FORMS}, ${got(value)}`);
  return n;
}

/**
 * Milliseconds from `10s`, `1h`, `250ms`, `2m`, `1d`. A bare number is refused (but `0`).
 * @throws UsageError naming `field` and the units.
 */
export function parseDuration(field: string, value: unknown): number {
  const n = withUnit(DURATION_UNITS, value);
  if (n === undefined) throw new UsageError(`expected ${field} to be a duration with ${DURATION_FORMS}, ${got(value)}`);
  return n;
}

/** A whole number (port, count) from a flag's text or a config number. @throws UsageError naming `field`. */
export function parseInteger(field: string, value: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const n = typeof value === 'string' && /^\s*\d+\s*$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
    throw new UsageError(`expected ${field} to be an integer from ${min} to ${max}, got ${show(value)}`);
  }
  return n;
}

/** A value as an error message shows it: strings quoted, the rest as JSON. */
export function show(value: unknown): string {
  if (typeof value === 'string') return `'${value}'`;
  if (typeof value === 'function') return 'a function';
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** Option names (at any depth) whose value is a size, and those whose value is a duration. */
const SIZE_NAME = /(size|bytes)$/i;
const DURATION_NAME = /(ttl|timeout|interval|period|cooldown|backoff|wait|staleiferror|stalewhilerevalidate)$/i;

const isPlainObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype;

/**
 * Returns a copy of a plain options object (from a config file) where every size or duration
 * option is converted to bytes or ms; it must be given with a unit (`"10s"`, `"64mb"`: a bare
 * number is refused, but `0`). Booleans (`staleIfError: false`), functions, arrays and other
 * values pass through for the library's own validation. `path` names fields in errors
 * (`config.peers.coolDown`).
 */
export function convertUnits(value: Record<string, unknown>, path: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, v] of Object.entries(value)) {
    const field = `${path}.${name}`;
    const unitless = typeof v === 'string' || typeof v === 'number';
    if (unitless && SIZE_NAME.test(name)) out[name] = parseSize(field, v);
    else if (unitless && DURATION_NAME.test(name)) out[name] = parseDuration(field, v);
    else if (isPlainObject(v)) out[name] = convertUnits(v, field);
    // A list of objects (`rules`): each converted in turn (`config.rules[0].ttl`).
    else if (Array.isArray(v) && v.some(isPlainObject)) out[name] = v.map((item: unknown, i) => (isPlainObject(item) ? convertUnits(item, `${field}[${i}]`) : item));
    else out[name] = v;
  }
  return out;
}

/** A command's flag definitions (`node:util` parseArgs options). */
export type FlagSpec = NonNullable<ParseArgsConfig['options']>;
/** The parseArgs configuration {@link parseFlags} builds: the flags plus `-h`/`--help`, strict. */
export type FlagsConfig<O extends FlagSpec> = { args: string[]; options: O & { help: { type: 'boolean'; short: 'h' } }; allowPositionals: boolean; strict: true };

/**
 * Parses a command's flags strictly (unknown flags refused), with `-h`/`--help` added.
 * @throws UsageError with the parser's first line ("Unknown option '--nope'").
 */
export function parseFlags<O extends FlagSpec>(argv: readonly string[], options: O, allowPositionals = false): ReturnType<typeof parseArgs<FlagsConfig<O>>> {
  try {
    return parseArgs<FlagsConfig<O>>({ args: [...argv], options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message.split('\n')[0]!);
  }
}
