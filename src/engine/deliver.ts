/**
 * Delivers a stored entry to a client: at once for a plain entry (no promise on the hit path),
 * after assembling its includes for an ESI template entry.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Entry } from '../entry.js';
import { CacheError, IncludeError } from '../errors.js';
import type { IncludeHooks } from '../seam.js';
import { serveAssembled, serveEntry, type CacheStatus } from '../serve.js';
import type { EngineContext, Exchange } from './types.js';

/** Writes entries to clients with this cache's status headers. */
export class Deliver {
  readonly #ctx: EngineContext;

  /**
   * Writes an entry. A template entry (ESI) is assembled first: the promise resolves once it is
   * written. Any other entry is written at once (undefined): the hit path allocates no promise
   * (and no options object: hence the positional parameters). Without includes, no entry is
   * looked at as a template (switched in at construction).
   */
  readonly serve: (req: IncomingMessage, res: ServerResponse, entry: Entry, status: CacheStatus, now: number, ex: Exchange) => Promise<boolean> | undefined;

  constructor(ctx: EngineContext) {
    this.#ctx = ctx;
    const serveCtx = { status: 'HIT' as CacheStatus, now: 0, statusHeaders: ctx.statusHeaders };
    const plain = (req: IncomingMessage, res: ServerResponse, entry: Entry, status: CacheStatus, now: number): undefined => {
      serveCtx.status = status;
      serveCtx.now = now;
      serveEntry(req, res, entry, serveCtx);
      return undefined;
    };
    const includes = ctx.includes;
    this.serve =
      includes === undefined
        ? plain
        : (req, res, entry, status, now, ex) => (entry.esi === true ? this.#serveTemplate(req, res, entry, { status, now, ex }, includes) : plain(req, res, entry, status, now));
  }

  /**
   * Answers with a bare error status (500: the render failed; 504: it timed out) and nothing of
   * the origin's: what a waiter gets when the render it waited for produced nothing to serve.
   */
  failure(res: ServerResponse, status: 500 | 504): true {
    if (!res.headersSent) {
      const text = status === 504 ? 'Gateway Timeout' : 'Internal Server Error';
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    }
    return true;
  }

  /** Serves a template entry: each include filled from the data cache, or 500 when one must fail the page. */
  async #serveTemplate(req: IncomingMessage, res: ServerResponse, entry: Entry, at: { status: CacheStatus; now: number; ex: Exchange }, includes: IncludeHooks): Promise<boolean> {
    let body: Buffer;
    try {
      body = await includes.assemble(entry.body, req, at.ex.regen ?? this.#ctx.runner);
    } catch (error) {
      this.#ctx.report.fail(error instanceof CacheError ? error : new IncludeError('include assembly failed', { cause: error }));
      return this.failure(res, 500);
    }
    serveAssembled(req, res, entry, body, { status: at.status, now: at.now, statusHeaders: this.#ctx.statusHeaders });
    return true;
  }
}
