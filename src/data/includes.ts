/**
 * The data cache's side of the engine hooks: render scopes around response renders, the
 * reverse index kept in step with response entries, and ESI includes filled at serve time.
 */
import type { EngineHooks, RenderScope } from '../seam.js';
import { CacheError, DataLoopError, IncludeError } from '../errors.js';
import type { ResolvedDataOptions } from './options.js';
import { isHtml, parseTemplate, templateOf, type Include, type Segment } from './esi.js';
import { pathOf } from './keys.js';
import { RESPONSE, type Scope } from './scope.js';
import type { DataStorage } from './storage.js';
import type { DataResponse } from './types.js';

const EMPTY = Buffer.alloc(0);

/** Scopes, the reverse index of responses and ESI include filling, for the engine. */
export class DataIncludes {
  readonly #storage: DataStorage;
  readonly #options: ResolvedDataOptions;
  readonly #fetch: (src: string) => Promise<DataResponse>;
  readonly #fail: (error: CacheError) => void;
  readonly #templates = new WeakMap<Buffer, Segment[] | null>();

  /** `fetch` is `cache.data.fetch` (an include is fetched like any other path). */
  constructor(storage: DataStorage, options: ResolvedDataOptions, fetch: (src: string) => Promise<DataResponse>, fail: (error: CacheError) => void) {
    this.#storage = storage;
    this.#options = options;
    this.#fetch = fetch;
    this.#fail = fail;
  }

  /** The hooks the engine calls: scopes around response renders, the reverse index, ESI. */
  hooks(): EngineHooks {
    return {
      openScope: (req, runner) => this.#storage.deps.open({ chain: [pathOf(req.url ?? '/')], host: req.headers.host ?? '', runner }),
      runInScope: (scope, fn) => this.#storage.als.run(scope as Scope, fn),
      closeScope: (scope: RenderScope) => this.#storage.deps.close(scope as Scope),
      onEntry: (key, before, after) => {
        this.#storage.deps.unlink(RESPONSE + key, before?.deps);
        this.#storage.deps.link(RESPONSE + key, after?.deps, (k) => this.#storage.digestOf(k));
      },
      includes: {
        isHtml,
        isTemplate: (body) => this.#templateOf(body) !== null,
        assemble: (body, req, runner) => {
          const segments = this.#templateOf(body) ?? parseTemplate(body);
          // A fresh scope: fragments filled at serve time are not dependencies of the page
          // (they keep their own freshness); the chain starts at the page for loop detection.
          const scope = this.#storage.deps.open({ chain: [pathOf(req.url ?? '/')], host: req.headers.host ?? '', runner });
          return this.#storage.als.run(scope, () => this.#fill(segments, 1)).finally(() => this.#storage.deps.close(scope));
        },
      },
    };
  }

  /** The parsed template of a body with includes, or null; parsed once per stored body (the Buffer is the entry's). */
  #templateOf(body: Buffer): Segment[] | null {
    let segments = this.#templates.get(body);
    if (segments === undefined) this.#templates.set(body, (segments = templateOf(body) ?? null));
    return segments;
  }

  async #fill(segments: readonly Segment[], depth: number): Promise<Buffer> {
    const parts = await Promise.all(segments.map((s) => (Buffer.isBuffer(s) ? s : this.#include(s, depth))));
    return Buffer.concat(parts);
  }

  async #include(include: Include, depth: number): Promise<Buffer> {
    try {
      if (depth > this.#options.maxIncludeDepth) throw new IncludeError(`include ${include.src} is nested deeper than options.data.maxIncludeDepth (${this.#options.maxIncludeDepth})`);
      const res = await this.#fetch(include.src);
      if (res.status >= 400) throw new IncludeError(`include ${include.src} answered ${res.status}`);
      if (!isHtml(res.headers['content-type'])) return res.body;
      const nested = this.#templateOf(res.body);
      if (nested === null) return res.body;
      const outer = this.#storage.als.getStore()!;
      const scope = this.#storage.deps.open({ chain: [...outer.chain, pathOf(include.src)], host: outer.host, runner: outer.runner });
      const segments = nested;
      return await this.#storage.als.run(scope, () => this.#fill(segments, depth + 1)).finally(() => this.#storage.deps.close(scope));
    } catch (error) {
      // A loop is an authoring error, not a failing fragment server: it always fails the page.
      if (!(error instanceof DataLoopError) && (include.continueOnError || this.#options.includeErrors === 'continue')) {
        this.#fail(error instanceof CacheError ? error : new IncludeError(`include ${include.src} failed`, { cause: error }));
        return EMPTY;
      }
      throw error;
    }
  }}
