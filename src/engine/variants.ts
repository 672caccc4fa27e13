/**
 * The Vary map: for each primary key, the request header names its responses vary on and the
 * variant keys stored under it. Chooses a request's variant key, and stores and removes entries
 * with their variants in every tier.
 */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { boundedLru } from '../lru.js';
import type { Entry } from '../entry.js';
import { EncodingKeys, type EncodingState } from './encoding-keys.js';
import type { TargetIndex } from '../invalidation/targets.js';
import { variantKey } from '../key.js';
import type { Tiers } from './tiers.js';
import type { CacheEvent, EngineContext } from './types.js';

/** Request headers removed before a render whose response will be stored (see `unkeyedHeaders`). */
export const CONDITIONAL_HEADERS: readonly string[] = ['if-none-match', 'if-modified-since', 'if-unmodified-since', 'if-match', 'if-range', 'range'];

interface VarySpec {
  names: string[];
  variants: string[];
  /** With `accept-encoding` in names: the codings seen (undefined: none yet). */
  encoding?: EncodingState | undefined;
}

/** Compression of stored entries, as the variants see it (engine/compress.ts). */
export interface VariantCompression {
  /** Told of every stored entry (compression of its variants). */
  stored(key: string, entry: Entry): void;
  /** An entry about to be stored: `Vary: Accept-Encoding` when it may get variants. */
  varyEntry(entry: Entry): void;
  /** A render about to be stored, at header time: the same for its response. */
  varyResponse(res: ServerResponse, headers: OutgoingHttpHeaders): void;
}

const AE = 'accept-encoding';

/** The variants of every primary key, and the store/remove operations that keep them in step. */
export class Variants {
  readonly #ctx: EngineContext;
  readonly #tiers: Tiers;
  readonly #targets: TargetIndex;
  readonly #vary = boundedLru<string, VarySpec>(100_000);
  /** Request headers removed before a render that will be stored (validators, Range, unkeyed). */
  readonly #stripped: ReadonlySet<string>;

  /** Compression of stored entries, when configured. */
  readonly #compression: VariantCompression | undefined;
  readonly #encodings: EncodingKeys;
  /** Completes an entry before it is stored (rule tags, the CDN's tag header), when configured. */
  readonly #decorate: ((entry: Entry) => void) | undefined;

  constructor(ctx: EngineContext, tiers: Tiers, targets: TargetIndex, hooks: { compression?: VariantCompression | undefined; decorate?: ((entry: Entry) => void) | undefined } = {}) {
    this.#ctx = ctx;
    this.#tiers = tiers;
    this.#targets = targets;
    this.#compression = hooks.compression;
    this.#decorate = hooks.decorate;
    this.#encodings = new EncodingKeys(ctx.options.compress?.encodings ?? []);
    this.#stripped = new Set([...CONDITIONAL_HEADERS, ...ctx.options.unkeyedHeaders]);
  }

  /** The key of `req`'s variant under `primary`; the map is not touched until some response varied. */
  keyOf(primary: string, req: IncomingMessage): string {
    const spec = this.#vary.size === 0 ? undefined : this.#vary.get(primary);
    return spec === undefined ? primary : this.#keyWith(primary, spec.names, spec, req);
  }

  /** The variant key under `primary` chosen by plain `headers` (peer lookups, background renders). */
  keyFor(primary: string, headers: IncomingMessage['headers']): string {
    const spec = this.#vary.get(primary);
    return spec === undefined ? primary : variantKey(primary, spec.names, headers, this.#tokenOf(spec.names, spec, headers));
  }

  /** The Accept-Encoding token of `headers` when `names` has it (see engine/encoding-keys.ts). */
  #tokenOf(names: readonly string[], spec: VarySpec | undefined, headers: IncomingMessage['headers']): string | undefined {
    if (!names.includes(AE)) return undefined;
    const state = spec !== undefined && sameNames(spec.names, names) ? spec.encoding : undefined;
    return this.#encodings.token(state ?? this.#encodings.initial, headers[AE]);
  }

  /**
   * At header time of a render whose response will be stored: `Vary: Accept-Encoding` on it when
   * the entry may get compressed variants.
   */
  varyResponse(res: ServerResponse, headers: OutgoingHttpHeaders): void {
    this.#compression?.varyResponse(res, headers);
  }

  /**
   * The key `entry` is stored under for a request with `headers`, and the Accept-Encoding state
   * that storing it leads to (learnt from its content coding).
   */
  #storedKey(primary: string, entry: Entry, headers: IncomingMessage['headers'], spec: VarySpec | undefined): { key: string; encoding: EncodingState | undefined } {
    if (!entry.vary.includes(AE)) return { key: variantKey(primary, entry.vary, headers), encoding: undefined };
    const current = spec !== undefined && sameNames(spec.names, entry.vary) ? spec.encoding : undefined;
    const encoding = this.#encodings.learn(current ?? this.#encodings.initial, entry);
    return { key: variantKey(primary, entry.vary, headers, this.#encodings.storedToken(encoding, entry, headers[AE])), encoding };
  }

  /** The key {@link store} would store `entry` under, without storing it (what it teaches is kept). */
  storedKey(primary: string, entry: Entry, headers: IncomingMessage['headers']): string {
    const spec = this.#vary.get(primary);
    const { key, encoding } = this.#storedKey(primary, entry, headers, spec);
    if (spec !== undefined && encoding !== undefined && sameNames(spec.names, entry.vary)) spec.encoding = encoding;
    return key;
  }

  /** The variant keys stored under `primary` (empty when its responses do not vary), oldest first. */
  keysOf(primary: string): readonly string[] {
    return this.#vary.get(primary)?.variants ?? [];
  }

  /**
   * Whether the memory tier holds a response under `primary`: the entry itself, or a list of
   * variants (a page that varies). Neither read changes recency (the refetch index,
   * invalidation/targets.ts, asks it).
   */
  holds(primary: string): boolean {
    return this.#vary.has(primary) || this.#tiers.memory.has(primary);
  }

  /** The Vary names known for `primary`. */
  names(primary: string): string[] | undefined {
    return this.#vary.get(primary)?.names;
  }

  /**
   * A varied entry under the bare primary key is the marker {@link store} leaves in lower tiers
   * for restarts: it names the Vary headers, so `req`'s own variant can be looked up. Returns
   * that variant's key, or undefined when `found` under `key` is no marker.
   */
  fromMarker(primary: string, key: string, found: Entry, req: IncomingMessage): string | undefined {
    if (key !== primary || found.vary.length === 0) return undefined;
    if (!this.#vary.has(primary)) this.#vary.set(primary, { names: found.vary, variants: [] });
    return this.variantOf(primary, found.vary, req);
  }

  /**
   * The variant key of `req` under `primary` for the Vary `names`, computed on the headers a
   * render sees: a leader's request loses its validators and unkeyed headers before it renders
   * (and its entry is stored under what is left), so a lookup must ignore them too, or a
   * `Vary: X-Forwarded-Proto` page would never be found again.
   */
  variantOf(primary: string, names: readonly string[], req: IncomingMessage): string {
    return this.#keyWith(primary, names, names.includes(AE) ? this.#vary.get(primary) : undefined, req);
  }

  #keyWith(primary: string, names: readonly string[], spec: VarySpec | undefined, req: IncomingMessage): string {
    for (const name of names) {
      if (!this.#stripped.has(name)) continue;
      const view = this.view(req);
      return variantKey(primary, names, view, this.#tokenOf(names, spec, view));
    }
    return variantKey(primary, names, req.headers, this.#tokenOf(names, spec, req.headers));
  }

  /** The request headers a stored response's variant is keyed on: the request minus what a render never sees. */
  view(req: IncomingMessage): IncomingMessage['headers'] {
    const view: IncomingMessage['headers'] = { ...req.headers };
    for (const name of CONDITIONAL_HEADERS) delete view[name];
    for (const name of this.#ctx.options.unkeyedHeaders) delete view[name];
    return view;
  }

  /**
   * Stores an entry under its variant key in every tier and returns that key. A newer Vary for
   * the same primary key replaces the old variants; past maxVariants the oldest is dropped.
   */
  store(primary: string, entry: Entry, requestHeaders: IncomingMessage['headers']): string {
    // In place: the render's waiters are handed this same object.
    this.#decorate?.(entry);
    const spec = this.#vary.get(primary);
    const { key, encoding } = this.#storedKey(primary, entry, requestHeaders, spec);
    const tiers = this.#tiers;
    this.#compression?.varyEntry(entry);
    if (entry.vary.length === 0) {
      if (spec !== undefined) {
        this.#vary.delete(primary);
        for (const old of spec.variants) tiers.delete(old);
      }
    } else if (spec === undefined || !sameNames(spec.names, entry.vary)) {
      if (spec !== undefined) for (const old of spec.variants) tiers.delete(old);
      tiers.delete(primary);
      this.#vary.set(primary, { names: entry.vary, variants: [key], encoding });
      // The variant list lives in memory; lower tiers outlive it (a disk store across a restart),
      // so they get a bodiless marker under the primary key that names the Vary headers.
      const marker: Entry = { ...entry, headers: [], body: Buffer.alloc(0), deps: undefined, esi: undefined, encoded: undefined };
      tiers.setLower(primary, marker);
    } else {
      spec.encoding = encoding;
      const i = spec.variants.indexOf(key);
      if (i !== -1) spec.variants.splice(i, 1);
      spec.variants.push(key);
      while (spec.variants.length > this.#ctx.options.maxVariants) tiers.delete(spec.variants.shift()!);
    }
    // Refused by every tier (larger than the memory tier takes, no other): served, not counted stored.
    if (!tiers.set(key, entry)) return key;
    this.#compression?.stored(key, entry);
    this.#targets.remember(entry);
    this.#ctx.counters.stores++;
    this.#ctx.report.emit('store', { key, url: entry.url } satisfies CacheEvent);
    return key;
  }

  /** Removes a URL (all its variants) from every tier. Used for unsafe methods (RFC 9111 §4.4). */
  removePrimary(primary: string): void {
    const spec = this.#vary.get(primary);
    if (spec !== undefined) {
      this.#vary.delete(primary);
      for (const key of spec.variants) this.#tiers.delete(key);
    }
    this.#tiers.delete(primary);
  }
}

/** True when two Vary name lists are the same. */
function sameNames(a: readonly string[], b: readonly string[]): boolean {
  return a === b || (a.length === b.length && a.every((name, i) => name === b[i]));
}
