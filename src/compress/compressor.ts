/**
 * Makes the compressed variants of a stored entry, once, off the request path: which entries
 * qualify, and the compression itself (node:zlib's asynchronous functions run on libuv's thread
 * pool, at most two entries at a time). The result is a new entry carrying `encoded` bodies and
 * `Vary: Accept-Encoding`; the identity body, its headers and its validators are unchanged.
 */
import { promisify } from 'node:util';
import * as zlib from 'node:zlib';
import pLimit from 'p-limit';
import type { Entry } from '../entry.js';
import { headerList } from '../policy.js';
import type { Coding } from './negotiate.js';
import type { ResolvedCompressOptions } from './settings.js';

type Compress = (body: Buffer, level: number) => Promise<Buffer>;

const brotli = promisify(zlib.brotliCompress);
const gzip = promisify(zlib.gzip);
const zstd = (zlib as { zstdCompress?: typeof zlib.gzip }).zstdCompress;
const zstdAsync = zstd === undefined ? undefined : (promisify(zstd) as unknown as (b: Buffer, o: object) => Promise<Buffer>);

const COMPRESS: Record<Coding, Compress> = {
  br: (body, level) =>
    brotli(body, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: level, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: body.length, [zlib.constants.BROTLI_PARAM_MODE]: zlib.constants.BROTLI_MODE_TEXT } }),
  gzip: (body, level) => gzip(body, { level }),
  zstd: (body, level) => {
    if (zstdAsync === undefined) return Promise.reject(new Error('zstd is not available in this Node'));
    // ZSTD_c_compressionLevel is parameter 100 in zstd's API (zlib.constants.ZSTD_c_compressionLevel).
    const key = (zlib.constants as unknown as Record<string, number>).ZSTD_c_compressionLevel ?? 100;
    return zstdAsync(body, { params: { [key]: level } });
  },
};

/** Why `entry` is not compressed (a reason token), or undefined when it should be. */
export function skipReason(entry: Entry, options: ResolvedCompressOptions): string | undefined {
  if (entry.encoded !== undefined) return 'already has variants';
  if (entry.esi === true) return 'template assembled at serve time';
  if (entry.body.length < options.minSize) return 'small';
  return headSkipReason((name) => joinedOf(entry.headers, name), options);
}

/**
 * Why a response with these header fields (`header(name)`: all of a field's lines joined, or
 * undefined) is not compressed, judged before its body is known: a `Content-Length` below
 * `minSize` counts, an unknown length does not.
 */
export function headSkipReason(header: (name: string) => string | undefined, options: ResolvedCompressOptions): string | undefined {
  const encoding = header('content-encoding');
  if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity') return 'content-encoding';
  if (header('content-range') !== undefined) return 'partial';
  // RFC 9111 §5.2.2.6: no-transform forbids changing the content, compression included.
  if (headerList(header('cache-control')).includes('no-transform')) return 'no-transform';
  const type = header('content-type')?.split(';')[0]?.trim().toLowerCase();
  if (type === undefined || !options.types(type)) return 'type';
  const length = header('content-length');
  if (length !== undefined && Number(length) < options.minSize) return 'small';
  return undefined;
}

/** All lines of one stored header field, joined (RFC 9110 §5.3), or undefined. */
function joinedOf(headers: Entry['headers'], name: string): string | undefined {
  let out: string | undefined;
  for (const [n, v] of headers) if (n === name) out = out === undefined ? v : `${out}, ${v}`;
  return out;
}

/** True when the stored headers' `Vary` names Accept-Encoding. */
export function variesOnEncoding(headers: Entry['headers']): boolean {
  return headerList(joinedOf(headers, 'vary')).includes('accept-encoding');
}

/** Compresses entries with bounded concurrency. */
export class Compressor {
  readonly #options: ResolvedCompressOptions;
  readonly #limit = pLimit(2);

  constructor(options: ResolvedCompressOptions) {
    this.#options = options;
  }

  /**
   * The entry with its compressed variants (only those smaller than the identity body), and
   * `Vary: Accept-Encoding` added to its headers when it has any; undefined when none paid off.
   */
  variants(entry: Entry): Promise<Entry | undefined> {
    return this.#limit(async () => {
      const { encodings, level } = this.#options;
      const bodies = await Promise.all(encodings.map((coding) => COMPRESS[coding](entry.body, level[coding])));
      const encoded: Partial<Record<Coding, Buffer>> = {};
      encodings.forEach((coding, i) => {
        if (bodies[i]!.length < entry.body.length) encoded[coding] = bodies[i]!;
      });
      if (Object.keys(encoded).length === 0) return undefined;
      const headers: Entry['headers'] = variesOnEncoding(entry.headers) ? entry.headers : [...entry.headers, ['vary', 'Accept-Encoding']];
      return { ...entry, headers, encoded };
    });
  }
}
