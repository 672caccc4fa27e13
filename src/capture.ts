/**
 * Runs a handler's response through a tee: the client receives the bytes as the handler writes
 * them (no added time to first byte, back-pressure untouched), and a copy is kept for the cache
 * until it turns out not storable or too large (request/response pairs with no client connection
 * are in `synthetic.ts`).
 */
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import createDebug from 'debug';
import { ERROR_TEXT } from './serve.js';

const debug = createDebug('stratacache:capture');

/** How a capture ended. */
export type CaptureResult =
  | {
      ok: true;
      status: number;
      /**
       * The headers the render produced: one set before the capture began (by middleware in
       * front of the cache) and left unchanged belongs to that request, and is not included.
       */
      headers: OutgoingHttpHeaders;
      body: Buffer;
    }
  | { ok: false; reason: string; error?: unknown };

/** What the engine decides and learns during a capture. */
export interface CaptureHooks {
  /**
   * Called once, just before the response headers are sent. May set headers on `res` (they go
   * out to the client but are not part of `headers`). Returns false when the body need not be kept.
   */
  onHeaders(status: number, headers: OutgoingHttpHeaders): boolean;
  /** Called exactly once, when the response finished or failed. */
  onDone(result: CaptureResult): void;
  /**
   * How long (ms) the capture goes on after the client left before the handler ended (Varnish
   * keeps a backend fetch going when its client leaves): the handler's writes are still accepted
   * and kept, nothing more is sent, and `onDone` reports the whole response when the handler
   * ends. Past this, or when 0/undefined, the capture ends as `aborted` (a handler that stops
   * writing when its client leaves must not hold its waiters forever).
   */
  outlive?: number;
  /**
   * How long (ms) the response may go without a byte once its headers are decided: past it the
   * capture ends as `stalled` and the client's connection is destroyed, so the client sees a cut
   * response (a short body or a missing last chunk), never a complete-looking one. After the
   * client left (see {@link outlive}), {@link ABANDON_AFTER} applies instead: a handler that
   * stopped when its client left ends as `abandoned`. 0/undefined: no bound.
   */
  idle?: number;
  /**
   * Called once at header time, after `onHeaders`. Returning a function holds the response: the
   * client receives nothing until the handler ends, then the status, headers and the body the
   * function makes of the whole written body (ESI assembly). `result.body` stays what the handler
   * wrote. If the function rejects, the client gets a 500. Undefined streams as usual.
   */
  transform?(status: number, headers: OutgoingHttpHeaders): ((body: Buffer) => Promise<Buffer>) | undefined;
}

/** Handle on a capture in progress. */
export interface CaptureControl {
  /** Marks the capture failed (handler threw, stream broke); the response is never stored. */
  abort(reason: string, error?: unknown): void;
  /**
   * Takes the response away from the handler before its headers went out: `write` runs at once
   * and writes a replacement response (a stale copy) through the original methods; from then on
   * the handler's writeHead/write/end are swallowed (still accepted, so it completes), and
   * `onDone` fires with `reason: 'diverted'` when the handler ends. Returns false, doing nothing,
   * when the headers were already sent or the capture is over.
   */
  divert(write: () => void): boolean;
  /**
   * Answers the client now with a short `status` response of its own and closes its connection,
   * leaving the handler's response untouched (no header of it was sent): the capture goes on
   * without the client as if it had left (see {@link CaptureHooks.outlive}), so the render can
   * still be kept. Returns false, doing nothing, when the headers were already sent, the capture
   * is over, or there is no client connection.
   */
  answer(status: number, text: string, headers?: Record<string, string>): boolean;
}

/**
 * How long (ms) a render whose client left may go without writing before it counts as abandoned
 * (its handler stopped when the client went: `if (res.destroyed) return`, or `pipeline()`).
 */
export const ABANDON_AFTER = 1000;

type WriteHead = ServerResponse['writeHead'];
type Write = ServerResponse['write'];
type End = ServerResponse['end'];

/**
 * Hooks `res` the way expressjs/compression does: the original writeHead/write/end are kept and
 * called, so the client sees exactly what the handler wrote. See {@link ResponseCapture}.
 */
export function captureResponse(res: ServerResponse, hooks: CaptureHooks, maxBytes: number): CaptureControl {
  return new ResponseCapture(res, hooks, maxBytes);
}

/**
 * A tee of one handler response, as a decorator with explicit events (undici's `CacheHandler`):
 * {@link head} when the status and headers are decided, {@link data} for each chunk written,
 * {@link end} when the handler ends, {@link error} (`abort`) when it fails, and {@link abandon}
 * when the response goes quiet or its client leaves. The handler's `writeHead`/`write`/`end` are
 * patched to call these; what reaches the client goes through the original methods.
 *
 * States: streaming (the default) -> held (a transform keeps the body until the end) ->
 * detached (the client left or was answered: kept, not sent) -> diverted (a replacement was
 * served: the handler's output is swallowed) -> done (`onDone` called once).
 */
class ResponseCapture implements CaptureControl {
  readonly #res: ServerResponse;
  readonly #hooks: CaptureHooks;
  readonly #maxBytes: number;
  readonly #writeHead: WriteHead;
  readonly #write: Write;
  readonly #end: End;
  /** The socket the response started on (a client that closed it has left). */
  readonly #socket: ServerResponse['socket'];
  /**
   * What middleware in front of the cache already set (a request id, CORS headers): a hit must
   * not replay one client's values to another, so only what the render set or changed is kept.
   */
  readonly #preset: OutgoingHttpHeaders | undefined;
  #keeping = false;
  #decided = false;
  #done = false;
  /** The handler's output is being swallowed (a replacement was served). */
  #diverted = false;
  /** The replacement is being written: calls go to the original methods. */
  #passthrough = false;
  /** The client is gone (or was answered by `answer`): the handler's output is kept, not sent. */
  #detached = false;
  #outliveTimer: NodeJS.Timeout | undefined;
  /** When the handler last wrote (epoch ms), and the timer that ends a response gone quiet. */
  #lastWrite = 0;
  #watchdog: NodeJS.Timeout | undefined;
  #status = 200;
  #headers: OutgoingHttpHeaders = {};
  #chunks: Buffer[] = [];
  #bytes = 0;
  /** Set while the response is held for a transform: everything written, and the reason phrase. */
  #transform: ((body: Buffer) => Promise<Buffer>) | undefined;
  #held: Buffer[] = [];
  #heldBytes = 0;
  #heldReason: string | undefined;
  #released = false;
  readonly #onFinish = (): void => this.end();
  readonly #onClose = (): void => this.#closed();

  constructor(res: ServerResponse, hooks: CaptureHooks, maxBytes: number) {
    this.#res = res;
    this.#hooks = hooks;
    this.#maxBytes = maxBytes;
    this.#writeHead = res.writeHead as WriteHead;
    this.#write = res.write as Write;
    this.#end = res.end as End;
    this.#socket = res.socket;
    this.#preset = res.getHeaderNames().length === 0 ? undefined : res.getHeaders();
    const capture = this;
    res.writeHead = function writeHead(this: ServerResponse, code: number, ...rest: unknown[]) {
      return capture.#onWriteHead(this, code, rest);
    } as WriteHead;
    res.write = function write(this: ServerResponse, chunk: unknown, ...rest: unknown[]) {
      return capture.#onWrite(this, chunk, rest);
    } as Write;
    res.end = function end(this: ServerResponse, chunk?: unknown, ...rest: unknown[]) {
      return capture.#onEnd(this, chunk, rest);
    } as End;
    res.once('finish', this.#onFinish);
    res.once('close', this.#onClose);
    // The client may have left before the render began (its request waited): 'close' came and
    // went, and a destroyed response never emits 'finish'. Act on it now, as on a late 'close'.
    if (res.destroyed) this.#closed();
  }

  /** head: the status and headers are decided (once), just before they would be sent. */
  head(code: number): void {
    if (this.#decided) return;
    this.#decided = true;
    this.#watch();
    this.#status = code;
    this.#headers = this.#res.getHeaders();
    this.#keeping = this.#hooks.onHeaders(code, this.#headers);
    // A diverted response is replaced whole: nothing of the handler's is held or transformed.
    if (!this.#diverted) this.#transform = this.#hooks.transform?.(code, this.#headers);
  }

  /** data: a chunk the handler wrote, kept (copied) while the body may still be stored. */
  data(chunk: unknown, encoding: unknown): void {
    if (!this.#keeping || chunk === undefined || chunk === null || typeof chunk === 'function') return;
    const buf = copyOf(chunk, encoding);
    if (buf === undefined) return;
    this.#bytes += buf.length;
    if (this.#bytes > this.#maxBytes) {
      debug('pass: body over %d bytes', this.#maxBytes);
      this.#keeping = false;
      this.#chunks = [];
      return;
    }
    this.#chunks.push(buf);
  }

  /** end: the response finished; what was kept is the result (or why nothing was). */
  end(): void {
    if (!this.#decided) this.head(this.#res.statusCode);
    if (!this.#keeping) return this.#finish({ ok: false, reason: this.#bytes > this.#maxBytes ? 'too large' : 'not kept' });
    const body = this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks, this.#bytes);
    const declared = this.#headers['content-length'];
    if (declared !== undefined && Number(declared) !== body.length) return this.#finish({ ok: false, reason: 'content-length mismatch' });
    const headers = this.#preset === undefined ? this.#headers : withoutPreset(this.#headers, this.#preset);
    this.#finish({ ok: true, status: this.#status, headers, body });
  }

  /** error: the handler failed (threw, its stream broke); the response is never stored. */
  abort(reason: string, error?: unknown): void {
    this.#keeping = false;
    // A held response is no longer transformed: whatever the caller writes next (a 500) goes out as is.
    this.#transform = undefined;
    this.#held = [];
    this.#finish({ ok: false, reason, error });
  }

  /**
   * abandon: the response went quiet for too long. Once its client left: `abandoned` (the
   * handler stopped when it went); before: `stalled`, and the client's connection is destroyed
   * so it sees a cut response, never a complete-looking one.
   */
  abandon(quietMs: number): void {
    if (this.#detached) return this.#finish({ ok: false, reason: 'abandoned' });
    debug('stalled: no byte for %d ms, the response is cut', quietMs);
    this.#finish({ ok: false, reason: 'stalled' });
    this.#res.destroy();
  }

  answer(code: number, text: string, extra: Record<string, string> = {}): boolean {
    const res = this.#res;
    const socket = res.socket;
    // Only a real connection: a synthetic one (fetch adapter, background render) has no wire.
    if (this.#done || this.#diverted || this.#detached || res.headersSent || !(socket instanceof Socket) || socket.destroyed) return false;
    // Written on the connection itself, so the handler's response object stays untouched (it
    // may still set headers and end); the connection closes after it (no keep-alive reuse).
    const body = Buffer.from(text);
    let head = `HTTP/1.1 ${code} ${STATUS_TEXT[code] ?? 'Error'}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${body.length}\r\nconnection: close\r\n`;
    for (const [name, value] of Object.entries(extra)) head += `${name}: ${value}\r\n`;
    this.#detach(this.#hooks.outlive ?? 0, false);
    res.removeListener('close', this.#onClose);
    socket.end(Buffer.concat([Buffer.from(`${head}\r\n`, 'latin1'), body]));
    if ((this.#hooks.outlive ?? 0) <= 0) this.#finish({ ok: false, reason: 'answered' });
    return true;
  }

  divert(write: () => void): boolean {
    if (this.#done || this.#diverted || this.#detached || this.#res.headersSent) return false;
    this.#diverted = true;
    this.#keeping = false;
    this.#chunks = [];
    this.#transform = undefined;
    this.#held = [];
    // The replacement's own finish/close are not the handler's: the capture now ends when the
    // handler calls end().
    this.#res.removeListener('finish', this.#onFinish);
    this.#res.removeListener('close', this.#onClose);
    debug('divert');
    this.#passthrough = true;
    try {
      write();
    } finally {
      this.#passthrough = false;
    }
    return true;
  }

  #finish(result: CaptureResult): void {
    if (this.#done) return;
    this.#done = true;
    this.#chunks = [];
    if (this.#outliveTimer !== undefined) clearTimeout(this.#outliveTimer);
    if (this.#watchdog !== undefined) clearTimeout(this.#watchdog);
    this.#res.removeListener('finish', this.#onFinish);
    this.#res.removeListener('close', this.#onClose);
    this.#hooks.onDone(result);
  }

  /** The longest quiet time allowed now (0: none). */
  #quietLimit(): number {
    const idle = this.#hooks.idle ?? 0;
    return this.#detached ? Math.min(ABANDON_AFTER, idle || ABANDON_AFTER) : idle;
  }

  /** Starts watching for a quiet response (from the headers on, and again when the client leaves). */
  #watch(): void {
    const limit = this.#quietLimit();
    if (limit <= 0 || this.#done) return;
    this.#lastWrite = Date.now();
    if (this.#watchdog !== undefined) clearTimeout(this.#watchdog);
    this.#watchdog = setTimeout(() => this.#checkQuiet(), limit).unref();
  }

  /** The watchdog fired: re-armed for the rest of the limit when there was a write since, else abandon. */
  #checkQuiet(): void {
    this.#watchdog = undefined;
    if (this.#done || this.#diverted) return;
    const limit = this.#quietLimit();
    const quiet = Date.now() - this.#lastWrite;
    if (quiet < limit) this.#watchdog = setTimeout(() => this.#checkQuiet(), limit - quiet).unref();
    else this.abandon(quiet);
  }

  /**
   * Holds a chunk for the transform; calls a write callback as if it had been written. Past
   * `maxBytes` held, the response is sent as written from then on (the transform is skipped)
   * rather than buffered without bound. Returns whether the response is still held.
   */
  #hold(chunk: unknown, rest: unknown[]): boolean {
    if (chunk !== undefined && chunk !== null && typeof chunk !== 'function') {
      const buf = copyOf(chunk, rest[0]);
      if (buf !== undefined) (this.#held.push(buf), (this.#heldBytes += buf.length));
    }
    callLater([chunk, ...rest]);
    if (this.#heldBytes <= this.#maxBytes) return true;
    debug('transform skipped: body over %d bytes', this.#maxBytes);
    this.#transform = undefined;
    this.#sendHead(this.#status, this.#heldReason);
    for (const buf of this.#held) (this.#write as (c: Buffer) => boolean).call(this.#res, buf);
    this.#held = [];
    return false;
  }

  /** Writes the status line and headers through the original method. */
  #sendHead(code: number, reason: string | undefined): void {
    if (reason === undefined) (this.#writeHead as (c: number) => ServerResponse).call(this.#res, code);
    else (this.#writeHead as (c: number, r: string) => ServerResponse).call(this.#res, code, reason);
  }

  /** Sends the held response, transformed: its real headers now, then the new body. */
  #release(): void {
    const fn = this.#transform!;
    const res = this.#res;
    const body = this.#held.length === 1 ? this.#held[0]! : Buffer.concat(this.#held);
    this.#held = [];
    fn(body).then(
      (out) => {
        if (res.destroyed) return;
        // The body changed: its length and validators describe the handler's bytes, not these.
        res.setHeader('content-length', out.length);
        res.removeHeader('etag');
        res.removeHeader('last-modified');
        this.#sendHead(this.#status, this.#heldReason);
        (this.#end as (chunk: Buffer) => ServerResponse).call(res, out);
      },
      (error: unknown) => {
        debug('transform failed: %O', error);
        if (res.destroyed) return;
        // The handler's response is still good to store; only this client's assembled copy failed.
        for (const name of res.getHeaderNames()) res.removeHeader(name);
        res.setHeader('content-type', 'text/plain; charset=utf-8');
        res.setHeader('content-length', Buffer.byteLength(ERROR_TEXT[500]));
        this.#sendHead(500, undefined);
        (this.#end as (chunk: string) => ServerResponse).call(res, ERROR_TEXT[500]);
      },
    );
  }

  #onWriteHead(res: ServerResponse, code: number, rest: unknown[]): ServerResponse {
    if (this.#passthrough) return (this.#writeHead as (...a: unknown[]) => ServerResponse).call(res, code, ...rest);
    if (this.#diverted) return res;
    // Apply headers passed to writeHead through setHeader, so getHeaders() sees all of them
    // (the same technique as the on-headers package).
    let reason: string | undefined;
    let obj: unknown = rest[0];
    if (typeof obj === 'string') {
      reason = obj;
      obj = rest[1];
    }
    if (!res.headersSent && obj !== undefined && obj !== null) {
      if (Array.isArray(obj)) {
        if (obj.length > 0 && Array.isArray(obj[0])) for (const [k, v] of obj as Array<[string, string]>) res.appendHeader(k, v);
        else for (let i = 0; i + 1 < obj.length; i += 2) res.appendHeader(String(obj[i]), obj[i + 1] as string);
      } else {
        for (const [k, v] of Object.entries(obj as OutgoingHttpHeaders)) if (v !== undefined) res.setHeader(k, v);
      }
    }
    if (!res.headersSent) this.head(code);
    if (this.#diverted || this.#detached) return res;
    if (this.#transform !== undefined && !res.headersSent) {
      this.#status = code;
      this.#heldReason = reason;
      return res;
    }
    this.#sendHead(code, reason);
    return res;
  }

  #onWrite(res: ServerResponse, chunk: unknown, rest: unknown[]): boolean {
    if (this.#passthrough) return (this.#write as (...a: unknown[]) => boolean).call(res, chunk, ...rest);
    if (this.#watchdog !== undefined) this.#lastWrite = Date.now();
    if (!this.#diverted && !res.headersSent && !this.#decided) this.head(res.statusCode);
    if (this.#diverted) {
      callLater(rest);
      return true;
    }
    if (this.#detached) {
      if (!this.#done) this.data(chunk, rest[0]);
      callLater(rest);
      return true;
    }
    if (!this.#done && !res.writableEnded) this.data(chunk, rest[0]);
    if (this.#transform !== undefined && !res.headersSent) {
      this.#hold(chunk, rest);
      return true;
    }
    return (this.#write as (...a: unknown[]) => boolean).call(res, chunk, ...rest);
  }

  #onEnd(res: ServerResponse, chunk: unknown, rest: unknown[]): ServerResponse {
    if (this.#passthrough) return (this.#end as (...a: unknown[]) => ServerResponse).call(res, chunk, ...rest);
    if (!this.#diverted && !res.headersSent && !this.#decided) this.head(res.statusCode);
    const callbackArgs = typeof chunk === 'function' ? [chunk] : rest;
    if (this.#diverted) {
      callLater(callbackArgs);
      this.#finish({ ok: false, reason: 'diverted' });
      return res;
    }
    if (this.#detached) {
      if (!this.#done && typeof chunk !== 'function') this.data(chunk, rest[0]);
      callLater(callbackArgs);
      this.end();
      return res;
    }
    if (!this.#done && !res.writableEnded) this.data(chunk, rest[0]);
    if (this.#transform !== undefined && !res.headersSent) {
      if (this.#released) return res;
      this.#released = true;
      if (this.#hold(chunk, rest)) this.#release();
      else (this.#end as () => ServerResponse).call(res);
      return res;
    }
    return (this.#end as (...a: unknown[]) => ServerResponse).call(res, chunk, ...rest);
  }

  /**
   * 'close' before 'finish': the client went away or the response was destroyed mid-body. A
   * render that may still be kept goes on without its client, for at most `outlive` ms; but not
   * when this side destroyed the connection (a framework does so when a handler fails after its
   * headers went out): only a client that closed or reset it has "left".
   */
  #closed(): void {
    if (this.#done) return;
    const maxMs = this.#hooks.outlive ?? 0;
    const socket = this.#socket;
    const clientLeft = socket !== null && (socket.readableEnded || socket.errored !== null);
    if (!clientLeft || maxMs <= 0 || (this.#decided && !this.#keeping) || this.#res.writableEnded || this.#transform !== undefined) {
      return this.#finish({ ok: false, reason: 'aborted' });
    }
    this.#detach(maxMs);
  }

  /** `left`: the client went away (a handler may stop then: watched); else it was answered here. */
  #detach(maxMs: number, left = true): void {
    if (this.#detached) return;
    this.#detached = true;
    debug('client gone: the render goes on without it');
    if (left) this.#watch();
    else if (this.#watchdog !== undefined) (clearTimeout(this.#watchdog), (this.#watchdog = undefined));
    this.#outliveTimer = setTimeout(() => this.#finish({ ok: false, reason: 'aborted' }), maxMs);
    this.#outliveTimer.unref();
  }
}

/**
 * A copy of a written chunk. Never the caller's memory: a handler may reuse its Buffer (or the
 * memory under a Uint8Array view) once the write callback ran, and what is kept must stay the
 * bytes that were sent. A string is encoded into new memory; anything else is copied.
 */
function copyOf(chunk: unknown, encoding: unknown): Buffer | undefined {
  if (typeof chunk === 'string') return Buffer.from(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
  return chunk instanceof Uint8Array ? Buffer.copyBytesFrom(chunk) : undefined;
}

/** Reason phrases of the statuses {@link CaptureControl.answer} is used with. */
const STATUS_TEXT: Readonly<Record<number, string>> = ERROR_TEXT;

/** Calls a swallowed write's or end's callback, as the stream would have, on a later tick. */
function callLater(args: readonly unknown[]): void {
  const cb = args.find((a) => typeof a === 'function') as (() => void) | undefined;
  if (cb !== undefined) process.nextTick(cb);
}

/** Response headers minus those still holding the value they had when the capture began. */
function withoutPreset(headers: OutgoingHttpHeaders, preset: OutgoingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    const before = preset[name];
    if (before !== undefined && String(before) === String(value)) continue;
    out[name] = value;
  }
  return out;
}

