/**
 * `options.compress`: its option types and defaults (`DEFAULTS.compress`). A leaf module: the
 * resolver is in `compress/options.ts`.
 */
import * as zlib from 'node:zlib';
import type { Bytes } from '../options/units.js';
import type { Coding } from './negotiate.js';

/** True when this Node has zstd in `node:zlib` (Node 22.15 and 23.8 on; Node 20 has not). */
export const ZSTD_AVAILABLE = typeof (zlib as { zstdCompress?: unknown }).zstdCompress === 'function';

/** Compression effort per coding (brotli quality 0-11, gzip level 1-9, zstd level 1-22). */
export interface CompressLevels {
  br?: number;
  gzip?: number;
  zstd?: number;
}

/**
 * Compressed variants stored with each compressible entry, made once in the background when the
 * entry is stored (never per hit) and kept in every tier; a hit sends the best one the client
 * accepts. `compress: true` is `{ encodings: ['br', 'gzip'] }` (with `'zstd'` before gzip where
 * Node has it); `false` or no encodings turns it off.
 */
export interface CompressOptions {
  /**
   * Codings to store, in the server's order of preference (used when the client rates several
   * the same). `'zstd'` is refused on a Node without it. `[]`: off.
   * @default []
   */
  encodings?: readonly Coding[];
  /** Smallest body in bytes worth compressing. @default 1024 */
  minSize?: Bytes;
  /**
   * Media types compressed (`type/subtype`, `*` globs, parameters ignored). Responses with a
   * `Content-Encoding`, `Cache-Control: no-transform`, or another type (images, video, archives,
   * fonts already compressed) are stored as they are.
   * @default ['text/*', 'application/json', 'application/*+json', 'application/javascript', 'application/x-javascript', 'application/ecmascript', 'application/xml', 'application/*+xml', 'image/svg+xml', 'application/manifest+json']
   */
  types?: readonly string[];
  /**
   * Effort per coding: brotli quality (0-11), gzip level (1-9), zstd level (1-22). Compression
   * happens once per stored entry, off the request path, so the defaults favour size.
   * @default { br: 9, gzip: 9, zstd: 12 }
   */
  level?: CompressLevels;
}

/** Compression options after validation (undefined when off). */
export interface ResolvedCompressOptions {
  readonly encodings: readonly Coding[];
  readonly minSize: Bytes;
  readonly types: (mediaType: string) => boolean;
  readonly level: Readonly<Required<CompressLevels>>;
}

/** Defaults of {@link CompressOptions} (placed in `DEFAULTS.compress`). */
export const COMPRESS_DEFAULTS = Object.freeze({
  encodings: Object.freeze([] as Coding[]),
  minSize: 1024,
  types: Object.freeze([
    'text/*',
    'application/json',
    'application/*+json',
    'application/javascript',
    'application/x-javascript',
    'application/ecmascript',
    'application/xml',
    'application/*+xml',
    'image/svg+xml',
    'application/manifest+json',
  ]),
  level: Object.freeze({ br: 9, gzip: 9, zstd: 12 }),
});
