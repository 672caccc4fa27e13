/**
 * Data-cache values as bytes, so a value can live in an {@link Entry} and later move to disk and
 * to peers like any response: JSON values as `application/json`, strings as `text/plain`,
 * Buffers as `application/octet-stream`. Anything JSON would silently change or drop (functions,
 * BigInt, symbols, cycles, Dates, Maps, class instances, NaN) is refused with a path to the culprit.
 */
import { DataSerializeError } from '../errors.js';

/** What `cache.data.get` can store: JSON values, strings and Buffers. */
export type DataValue = string | number | boolean | null | Buffer | DataValue[] | { [key: string]: DataValue | undefined };

/** A serialized value: its bytes and the media type that says how to read them back. */
export interface Serialized {
  body: Buffer;
  contentType: string;
}

export const JSON_TYPE = 'application/json';
export const TEXT_TYPE = 'text/plain; charset=utf-8';
export const BINARY_TYPE = 'application/octet-stream';

/** Describes why `value` at `path` is not a JSON value, or undefined when it is one. */
function unserializable(value: unknown, path: string, seen: Set<object>): string | undefined {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return undefined;
    case 'number':
      return Number.isFinite(value) ? undefined : `${path} is ${value} (JSON would turn it into null)`;
    case 'bigint':
      return `${path} is a BigInt (convert it to a string or number)`;
    case 'function':
      return `${path} is a function`;
    case 'symbol':
      return `${path} is a symbol`;
    case 'undefined':
      return `${path} is undefined`;
    default:
      break;
  }
  if (value === null) return undefined;
  const obj = value as object;
  if (seen.has(obj)) return `${path} is a cycle (the object contains itself)`;
  if (Array.isArray(obj)) {
    seen.add(obj);
    for (let i = 0; i < obj.length; i++) {
      const why = unserializable(obj[i], `${path}[${i}]`, seen);
      if (why !== undefined) return why;
    }
    seen.delete(obj);
    return undefined;
  }
  const proto = Object.getPrototypeOf(obj) as unknown;
  if (proto !== Object.prototype && proto !== null) {
    const name = (obj as { constructor?: { name?: string } }).constructor?.name ?? 'unknown';
    return `${path} is a ${name} instance, not a plain object (JSON would not keep it as is)`;
  }
  if (Object.getOwnPropertySymbols(obj).length > 0) return `${path} has symbol keys`;
  seen.add(obj);
  for (const [k, v] of Object.entries(obj)) {
    // An undefined property is dropped, as JSON.stringify does: reading it back gives undefined too.
    if (v === undefined) continue;
    const why = unserializable(v, `${path}.${k}`, seen);
    if (why !== undefined) return why;
  }
  seen.delete(obj);
  return undefined;
}

/**
 * Turns a value into bytes and a media type.
 * @throws DataSerializeError when the value is not a string, a Buffer or a JSON value.
 */
export function serializeValue(value: unknown, key: string): Serialized {
  if (typeof value === 'string') return { body: Buffer.from(value, 'utf8'), contentType: TEXT_TYPE };
  if (Buffer.isBuffer(value)) return { body: Buffer.from(value), contentType: BINARY_TYPE };
  const why = unserializable(value, '$', new Set());
  if (why !== undefined) throw new DataSerializeError(`cannot store the value of ${JSON.stringify(key)}: ${why}`);
  return { body: Buffer.from(JSON.stringify(value), 'utf8'), contentType: JSON_TYPE };
}

/**
 * Reads a value back from its bytes. Every call returns a new value, so a caller that mutates
 * what it got does not change what the next caller gets.
 * @throws DataSerializeError when the bytes are not what their media type says.
 */
export function deserializeValue(body: Buffer, contentType: string | undefined, key: string): unknown {
  if (contentType === TEXT_TYPE) return body.toString('utf8');
  if (contentType === BINARY_TYPE) return Buffer.from(body);
  if (contentType === JSON_TYPE) {
    try {
      return JSON.parse(body.toString('utf8')) as unknown;
    } catch (cause) {
      throw new DataSerializeError(`stored value of ${JSON.stringify(key)} is not JSON`, { cause });
    }
  }
  throw new DataSerializeError(`stored value of ${JSON.stringify(key)} has unknown type ${String(contentType)}`);
}
