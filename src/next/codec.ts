/**
 * Next's incremental-cache values as bytes and back: JSON, with the Buffers (RSC payloads, route
 * bodies, segment data) and Maps (segment data) Next puts in them kept as they were. A plain
 * object that looks like one of those markers is escaped, so page data round-trips unchanged.
 * A field set to undefined is dropped (Next reads it back as undefined all the same).
 */

/** Marker keys: `$b` a Buffer (base64), `$m` a Map (entries), `$o` an escaped object (entries). */
const MARKERS = new Set(['$b', '$m', '$o']);

function isMarkerLike(value: object): boolean {
  const keys = Object.keys(value);
  return keys.length === 1 && MARKERS.has(keys[0]!);
}

/** The bytes of a value (Buffers, Uint8Arrays and Maps anywhere in it are kept). */
export function encodeValue(value: unknown): Buffer {
  const json = JSON.stringify(value, function (this: Record<string, unknown>, key: string, v: unknown) {
    // `this[key]` is the value before toJSON: a Buffer's toJSON would lose its type.
    const raw = this[key];
    if (raw instanceof Uint8Array) return { $b: Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64') };
    if (raw instanceof Map) return { $m: [...(raw as Map<unknown, unknown>)] };
    if (v !== null && typeof v === 'object' && !Array.isArray(v) && isMarkerLike(v)) return { $o: Object.entries(v) };
    return v;
  });
  return Buffer.from(json ?? 'null', 'utf8');
}

/**
 * The value {@link encodeValue} made the bytes of.
 * @throws SyntaxError when the bytes are not such a value.
 */
export function decodeValue(bytes: Buffer): unknown {
  return JSON.parse(bytes.toString('utf8'), (_key, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v) || !isMarkerLike(v)) return v;
    const o = v as { $b?: unknown; $m?: unknown; $o?: unknown };
    if (typeof o.$b === 'string') return Buffer.from(o.$b, 'base64');
    if (Array.isArray(o.$m)) return new Map(o.$m as Array<[unknown, unknown]>);
    if (Array.isArray(o.$o)) return Object.fromEntries(o.$o as Array<[string, unknown]>);
    return v;
  });
}
