/**
 * The disk tier's file format, and reading a file whole or, for a large entry, just its metadata
 * with the bodies left in the file to be streamed when sent ({@link FileBody}).
 *
 * A file is a small frame around {@link encodeEntry}:
 *
 * ```
 * 0        u32  magic 'SCD2'
 * 4        u32  key length in bytes
 * 8        u32  payload length in bytes (the encoded entry)
 * 12       u32  section count n: 2 + the number of compressed bodies
 * 16       n × 32B  sha256 of each section of the payload: its metadata (magic, length, JSON),
 *               the body, then each compressed body in the metadata's order
 * 16 + 32n key (utf8), then the payload
 * ```
 *
 * so a truncated file (length mismatch), a damaged one (digest), or one that belongs to another
 * key (key compare) is never served. Each body has a digest of its own, so a body streamed from
 * the file is checked as it is sent, without reading the others; the metadata is checked before
 * anything is sent.
 */
import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { finished, pipeline, Readable, Transform, type TransformCallback } from 'node:stream';
import { bodiesOf, decodeLayout, encodeEntry, metaLengthOf, type BodySource, type Coding, type Entry, type EntryLayout } from '../entry.js';

const MAGIC = 0x53434432; // 'SCD2'
const FIXED = 16;
const DIGEST = 32;
/** Sections of a payload: metadata, body, and at most one compressed body per coding. */
const MAX_SECTIONS = 5;
/** A key longer than this in a file header is a damaged file, not a key. */
const MAX_KEY = 1024 * 1024;
/** An opened file nobody streams, loads or releases is closed after this long (ms). */
const UNUSED_CLOSE = 60_000;

function sha256(bytes: Uint8Array): Buffer {
  return createHash('sha256').update(bytes).digest();
}

/** The sections of a payload as [start, length] from its start: metadata, body, compressed bodies. */
function sectionsOf(layout: EntryLayout): Array<[number, number]> {
  return [[0, layout.metaEnd], [layout.metaEnd, layout.bodyLength], ...layout.encoded.map(([, at, length]): [number, number] => [at, length])];
}

/** Frames an entry for a file: header, section digests, key, encoded entry. */
export function frame(key: string, entry: Entry): Buffer {
  const payload = encodeEntry(entry);
  const sections = sectionsOf(decodeLayout(payload, payload.length));
  const keyBytes = Buffer.from(key, 'utf8');
  const start = FIXED + DIGEST * sections.length + keyBytes.length;
  const out = Buffer.allocUnsafe(start + payload.length);
  out.writeUInt32BE(MAGIC, 0);
  out.writeUInt32BE(keyBytes.length, 4);
  out.writeUInt32BE(payload.length, 8);
  out.writeUInt32BE(sections.length, 12);
  sections.forEach(([at, length], i) => sha256(payload.subarray(at, at + length)).copy(out, FIXED + DIGEST * i));
  keyBytes.copy(out, start - keyBytes.length);
  payload.copy(out, start);
  return out;
}

/** What the fixed header says, checked against the file's size; a reason string when it is not a file of ours. */
function readHeader(fixed: Buffer, size: number): { keyLength: number; payloadLength: number; sections: number; start: number } | string {
  if (fixed.length < FIXED || fixed.readUInt32BE(0) !== MAGIC) return 'bad magic';
  const keyLength = fixed.readUInt32BE(4);
  const payloadLength = fixed.readUInt32BE(8);
  const sections = fixed.readUInt32BE(12);
  if (sections < 2 || sections > MAX_SECTIONS || keyLength > MAX_KEY) return 'bad header';
  const start = FIXED + DIGEST * sections + keyLength;
  if (start + payloadLength !== size) return 'truncated';
  return { keyLength, payloadLength, sections, start };
}

/** Decodes the payload's metadata once its digest checks out; a reason string otherwise. */
function checkedLayout(metaSection: Buffer, digest: Buffer, payloadLength: number, sections: number): EntryLayout | string {
  if (!sha256(metaSection).equals(digest)) return 'bad digest';
  let layout: EntryLayout;
  try {
    layout = decodeLayout(metaSection, payloadLength);
  } catch (error) {
    return `undecodable: ${(error as Error).message}`;
  }
  return layout.encoded.length + 2 === sections ? layout : 'bad sections';
}

/** Unframes a whole file read from disk; a reason string when it is not a valid entry for `key`. */
export function unframe(key: string, bytes: Buffer): Entry | string {
  const header = readHeader(bytes, bytes.length);
  if (typeof header === 'string') return header;
  const { keyLength, payloadLength, sections, start } = header;
  if (!bytes.subarray(start - keyLength, start).equals(Buffer.from(key, 'utf8'))) return 'wrong key';
  const payload = bytes.subarray(start);
  let metaLength: number;
  try {
    metaLength = metaLengthOf(payload);
  } catch (error) {
    return `undecodable: ${(error as Error).message}`;
  }
  if (8 + metaLength > payload.length) return 'truncated';
  const layout = checkedLayout(payload.subarray(0, 8 + metaLength), bytes.subarray(FIXED, FIXED + DIGEST), payloadLength, sections);
  if (typeof layout === 'string') return layout;
  const parts = sectionsOf(layout);
  for (let i = 1; i < parts.length; i++) {
    const [at, length] = parts[i]!;
    if (!sha256(payload.subarray(at, at + length)).equals(bytes.subarray(FIXED + DIGEST * i, FIXED + DIGEST * (i + 1)))) return 'bad digest';
  }
  return bodiesOf(layout, payload);
}

/** `length` bytes of `fh` at `position`; fewer means the file is shorter than its header says. */
async function readAt(fh: FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length);
  let got = 0;
  while (got < length) {
    const { bytesRead } = await fh.read(buf, got, length - got, position + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got === length ? buf : buf.subarray(0, got);
}

/**
 * Reads the metadata of the entry in an open file of `size` bytes, checked (header, key,
 * metadata digest); the bodies stay in the file, read by the returned entry's `source`. A reason
 * string when the file is not a valid entry for `key` (the caller closes the file then).
 * `damaged` is called when a body turns out not to match its digest.
 */
export async function openEntry(fh: FileHandle, key: string, size: number, damaged: () => void): Promise<Entry | string> {
  const header = readHeader(await readAt(fh, 0, FIXED), size);
  if (typeof header === 'string') return header;
  const { keyLength, payloadLength, sections, start } = header;
  const digestsAndKey = await readAt(fh, FIXED, DIGEST * sections + keyLength + 8);
  if (digestsAndKey.length !== DIGEST * sections + keyLength + 8) return 'truncated';
  if (!digestsAndKey.subarray(DIGEST * sections, DIGEST * sections + keyLength).equals(Buffer.from(key, 'utf8'))) return 'wrong key';
  let metaLength: number;
  try {
    metaLength = metaLengthOf(digestsAndKey.subarray(DIGEST * sections + keyLength));
  } catch (error) {
    return `undecodable: ${(error as Error).message}`;
  }
  if (8 + metaLength > payloadLength) return 'truncated';
  const metaSection = await readAt(fh, start, 8 + metaLength);
  const digests = digestsAndKey.subarray(0, DIGEST * sections);
  const layout = checkedLayout(metaSection, digests.subarray(0, DIGEST), payloadLength, sections);
  if (typeof layout === 'string') return layout;
  const file = new OpenFile(fh, { start, layout, digests, payloadLength, damaged });
  return { ...layout.head, source: new FileBody(file, 'identity') };
}

/** One opened file, shared by the source of its entry and that source's views. */
class OpenFile {
  readonly fh: FileHandle;
  /** Where the payload starts in the file. */
  readonly start: number;
  readonly layout: EntryLayout;
  readonly digests: Buffer;
  readonly payloadLength: number;
  readonly damaged: () => void;
  /** The codings of the compressed bodies in the file. */
  readonly codings: readonly Coding[];
  #closed = false;
  readonly #timer: NodeJS.Timeout;

  constructor(fh: FileHandle, at: { start: number; layout: EntryLayout; digests: Buffer; payloadLength: number; damaged: () => void }) {
    this.fh = fh;
    this.start = at.start;
    this.layout = at.layout;
    this.digests = at.digests;
    this.payloadLength = at.payloadLength;
    this.damaged = at.damaged;
    this.codings = at.layout.encoded.map(([coding]) => coding);
    // A lookup that found the entry and then neither sent nor read it must not keep the file open.
    this.#timer = setTimeout(() => this.close(), UNUSED_CLOSE);
    this.#timer.unref();
  }

  /** The section of `coding`: [index among the digests, start in the payload, length]. */
  section(coding: Coding | 'identity'): [number, number, number] {
    if (coding === 'identity') return [1, this.layout.metaEnd, this.layout.bodyLength];
    const i = this.layout.encoded.findIndex(([c]) => c === coding);
    if (i === -1) throw new RangeError(`no ${coding} body in this entry`);
    const [, at, length] = this.layout.encoded[i]!;
    return [i + 2, at, length];
  }

  digest(index: number): Buffer {
    return this.digests.subarray(DIGEST * index, DIGEST * (index + 1));
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    void this.fh.close().catch(() => undefined);
  }
}

/**
 * Passes bytes through and fails at the end when their sha256 is not `expected`. The last chunk
 * is held back until the digest is checked, so a client never receives the whole Content-Length
 * of a damaged body: the response is cut short and cannot be taken for complete.
 */
class Checked extends Transform {
  readonly #hash = createHash('sha256');
  readonly #expected: Buffer;
  readonly #damaged: () => void;
  #held: Buffer | undefined;

  constructor(expected: Buffer, damaged: () => void) {
    super();
    this.#expected = expected;
    this.#damaged = damaged;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#hash.update(chunk);
    const previous = this.#held;
    this.#held = chunk;
    callback(null, previous);
  }

  override _flush(callback: TransformCallback): void {
    if (this.#hash.digest().equals(this.#expected)) return callback(null, this.#held);
    this.#damaged();
    callback(new Error('disk body does not match its digest'));
  }
}

/** A body of an entry in an open disk file (see {@link BodySource}). */
class FileBody implements BodySource {
  readonly #file: OpenFile;
  readonly #coding: Coding | 'identity';
  readonly length: number;
  readonly codings: readonly Coding[];

  constructor(file: OpenFile, coding: Coding | 'identity') {
    this.#file = file;
    this.#coding = coding;
    this.length = file.section(coding)[2];
    this.codings = file.codings;
  }


  as(coding: Coding): BodySource {
    return new FileBody(this.#file, coding);
  }

  stream(start = 0, end = this.length - 1): Readable {
    const file = this.#file;
    const [index, at, length] = file.section(this.#coding);
    if (end < start) {
      file.close();
      return Readable.from([]);
    }
    const raw = file.fh.createReadStream({ start: file.start + at + start, end: file.start + at + end, autoClose: false });
    // Part of a body cannot be checked against the whole body's digest: it is sent as read.
    if (start !== 0 || end !== length - 1) {
      finished(raw, () => file.close());
      return raw;
    }
    return pipeline(raw, new Checked(file.digest(index), file.damaged), () => file.close());
  }

  async load(): Promise<Entry> {
    const file = this.#file;
    try {
      const { layout } = file;
      const payload = Buffer.allocUnsafe(file.payloadLength);
      const rest = await readAt(file.fh, file.start + layout.metaEnd, file.payloadLength - layout.metaEnd);
      if (rest.length !== file.payloadLength - layout.metaEnd) throw new Error('disk file is shorter than its header says');
      rest.copy(payload, layout.metaEnd);
      for (const coding of ['identity', ...this.codings] as const) {
        const [index, at, length] = file.section(coding);
        if (!sha256(payload.subarray(at, at + length)).equals(file.digest(index))) {
          file.damaged();
          throw new Error('disk body does not match its digest');
        }
      }
      return bodiesOf(layout, payload);
    } finally {
      file.close();
    }
  }

  release(): void {
    this.#file.close();
  }
}
