/**
 * Delivers a stored entry to a client: at once for a plain entry (no promise on the hit path),
 * after assembling its includes for an ESI template entry.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Representations } from '../compress/views.js';
import type { Entry } from '../entry.js';
import { CacheError, IncludeError, StoreError } from '../errors.js';
import type { IncludeHooks } from '../seam.js';
import { answerError, serveAssembled, serveEntry, type CacheStatus, type HitSink, type ServeContext } from '../serve.js';
import type { Via } from '../observe/cache-status.js';
import type { EngineContext, Exchange } from './types.js';

/** Writes entries to clients with this cache's status headers. */
export class Deliver {
  readonly #ctx: EngineContext;
  /** Reused by every plain delivery (serveEntry reads it synchronously). */
  readonly #serveCtx: ServeContext;
  readonly #representations: Representations;

  /**
   * Writes an entry. A template entry (ESI) is assembled first: the promise resolves once it is
   * written. Any other entry is written at once (undefined): the hit path allocates no promise
   * (and no options object: hence the positional parameters). `via` says how the entry got here,
   * for Cache-Status detail only (callers pass constants or nothing on the hit path). Without
   * includes no entry is looked at as a template: the plain writer is switched in at construction.
   */
  readonly serve: (req: IncomingMessage, res: ServerResponse, entry: Entry, status: CacheStatus, now: number, ex: Exchange, via?: Via) => Promise<boolean> | undefined;

  constructor(ctx: EngineContext) {
    this.#ctx = ctx;
    this.#representations = new Representations(ctx.options.compress?.encodings ?? []);
    this.#serveCtx = {
      status: 'HIT',
      now: 0,
      statusHeaders: ctx.statusHeaders,
      onBodyError: (error) => ctx.report.fail(new StoreError('sending a stored body from its store failed', { cause: error })),
    };
    const detail = ctx.statusDetail;
    // Cache-Status detail is switched in here, so the plain hit path below carries no test for it.
    if (detail !== undefined) {
      this.servePlain = (req, res, entry, status, now, via) => {
        const serveCtx = this.#serveCtx;
        serveCtx.status = status;
        serveCtx.now = now;
        serveCtx.statusHeaders = detail.served(status, entry, now, via);
        serveEntry(req, res, entry.encoded === undefined && entry.source === undefined ? entry : this.#representations.pick(req, entry), serveCtx);
      };
    }
    const includes = ctx.includes;
    this.serve =
      includes === undefined
        ? (req, res, entry, status, now, _ex, via) => void this.servePlain(req, res, entry, status, now, via)
        : (req, res, entry, status, now, ex, via) => {
            if (entry.esi === true) return this.#serveTemplate(req, res, entry, { status, now, ex, via }, includes);
            this.servePlain(req, res, entry, status, now, via);
            return undefined;
          };
  }

  /** True when the entry is an ESI template, assembled (asynchronously) for each delivery. */
  isTemplate(entry: Entry): boolean {
    return entry.esi === true && this.#ctx.includes !== undefined;
  }

  /** Writes a plain (not template) entry at once. `via` is read only with Cache-Status detail (switched in above). */
  servePlain(req: IncomingMessage, res: HitSink, entry: Entry, status: CacheStatus, now: number, _via?: Via): void {
    const ctx = this.#serveCtx;
    ctx.status = status;
    ctx.now = now;
    // An entry with compressed variants: the one the client accepts best (identity for Range).
    serveEntry(req, res, entry.encoded === undefined && entry.source === undefined ? entry : this.#representations.pick(req, entry), ctx);
  }

  /**
   * Answers with a bare error status (500: the render failed; 504: it timed out) and nothing of
   * the origin's: what a waiter gets when the render it waited for produced nothing to serve.
   */
  failure(res: ServerResponse, status: 500 | 504): true {
    answerError(res, status);
    return true;
  }

  /** Serves a template entry: each include filled from the data cache, or 500 when one must fail the page. */
  async #serveTemplate(req: IncomingMessage, res: ServerResponse, entry: Entry, at: { status: CacheStatus; now: number; ex: Exchange; via: Via | undefined }, includes: IncludeHooks): Promise<boolean> {
    let body: Buffer;
    try {
      body = await includes.assemble(entry.body, req, at.ex.regen ?? this.#ctx.runner);
    } catch (error) {
      this.#ctx.report.fail(error instanceof CacheError ? error : new IncludeError('include assembly failed', { cause: error }));
      return this.failure(res, 500);
    }
    const statusHeaders = this.#ctx.statusDetail?.served(at.status, entry, at.now, at.via) ?? this.#ctx.statusHeaders;
    serveAssembled(req, res, entry, body, { status: at.status, now: at.now, statusHeaders });
    return true;
  }
}
