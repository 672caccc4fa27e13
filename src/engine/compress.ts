/**
 * Compression of stored entries, switched in at construction when `options.compress` has
 * encodings: after an entry is stored, its compressed variants are made in the background and
 * the entry is stored again, with them, in every tier. Never on a hit. Every response of an
 * entry that may get them says `Vary: Accept-Encoding`: the render (MISS) and the entry as stored,
 * before its variants exist.
 */
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import createDebug from 'debug';
import { Compressor, headSkipReason, skipReason, variesOnEncoding } from '../compress/compressor.js';
import type { ResolvedCompressOptions } from '../compress/settings.js';
import { entrySize } from '../compact.js';
import { sameRender, type Entry } from '../entry.js';
import { CacheError } from '../errors.js';
import { headerList } from '../policy.js';
import type { Tiers } from './tiers.js';
import type { EngineContext } from './types.js';

const debug = createDebug('stratacache:engine');

/** Compresses what is stored, once per entry. */
export class StoredCompression {
  readonly #ctx: EngineContext;
  readonly #tiers: Tiers;
  readonly #options: ResolvedCompressOptions;
  readonly #compressor: Compressor;

  constructor(ctx: EngineContext, tiers: Tiers, options: ResolvedCompressOptions) {
    this.#ctx = ctx;
    this.#tiers = tiers;
    this.#options = options;
    this.#compressor = new Compressor(options);
  }

  /**
   * At header time of a render that will be stored: adds `Accept-Encoding` to the response's
   * `Vary` (and to `headers`, what is stored) when the entry may get compressed variants.
   */
  varyResponse(res: ServerResponse, headers: OutgoingHttpHeaders): void {
    const field = (name: string): string | undefined => {
      const v = headers[name];
      return v === undefined ? undefined : Array.isArray(v) ? v.join(', ') : String(v);
    };
    const vary = field('vary');
    if (headSkipReason(field, this.#options) !== undefined || headerList(vary).includes('accept-encoding')) return;
    headers.vary = vary === undefined ? 'Accept-Encoding' : `${vary}, Accept-Encoding`;
    if (!res.headersSent) res.setHeader('vary', headers.vary);
  }

  /** Adds `Vary: Accept-Encoding` to an entry about to be stored that may get compressed variants. */
  varyEntry(entry: Entry): void {
    if (skipReason(entry, this.#options) === undefined && !variesOnEncoding(entry.headers)) entry.headers = [...entry.headers, ['vary', 'Accept-Encoding']];
  }

  /**
   * `entry` was just stored under `key`: make its variants in the background. When they are
   * ready the entry replaces itself with them, unless a newer entry (or none) is there by then.
   */
  stored(key: string, entry: Entry): void {
    const skip = skipReason(entry, this.#options);
    if (skip !== undefined) {
      debug('compress skip: %s %s', skip, key);
      return;
    }
    const done = this.#compressor.variants(entry).then(
      async (withVariants) => {
        if (withVariants === undefined) return;
        const tiers = this.#tiers;
        const current = tiers.memory.peek(key);
        if (current !== undefined && sameRender(current, entry)) tiers.set(key, withVariants);
        // Too large for the memory tier: kept below it only, where it must still be this entry.
        else if (current === undefined && !tiers.memory.accepts(entrySize(entry)) && (await tiers.lowerHolds(key, entry))) tiers.setLower(key, withVariants);
        else return;
        this.#ctx.counters.compressions++;
      },
      (error: unknown) => this.#ctx.report.fail(new CacheError('ERR_INTERNAL', `compressing ${key} failed`, { cause: error })),
    );
    this.#ctx.report.track(done);
  }
}
