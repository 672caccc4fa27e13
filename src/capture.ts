/**
 * Runs a handler's response through a tee: the client receives the bytes as the handler writes
 * them (no added time to first byte, back-pressure untouched), and a copy is kept for the cache
 * until it turns out not storable or too large. Also builds request/response pairs with no client
 * connection, for background regeneration.
 */
import { IncomingMessage, ServerResponse, type OutgoingHttpHeaders } from 'node:http';
import { Socket } from 'node:net';
import { Duplex } from 'node:stream';
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
 * called, so the client sees exactly what the handler wrote.
 */
export function captureResponse(res: ServerResponse, hooks: CaptureHooks, maxBytes: number): CaptureControl {
  const origWriteHead = res.writeHead as WriteHead;
  const origWrite = res.write as Write;
  const origEnd = res.end as End;
  let keeping = false;
  let decided = false;
  let done = false;
  /** The handler's output is being swallowed (a replacement was served). */
  let diverted = false;
  /** The replacement is being written: calls go to the original methods. */
  let passthrough = false;
  /** The client is gone (or was answered by `answer`): the handler's output is kept, not sent. */
  let detached = false;
  let outliveTimer: NodeJS.Timeout | undefined;
  /** When the handler last wrote (epoch ms), and the timer that ends a response gone quiet. */
  let lastWrite = 0;
  let watchdog: NodeJS.Timeout | undefined;
  let status = 200;
  let headers: OutgoingHttpHeaders = {};
  // What middleware in front of the cache already set (a request id, CORS headers): a hit must
  // not replay one client's values to another, so only what the render set or changed is kept.
  const preset = res.getHeaderNames().length === 0 ? undefined : res.getHeaders();
  let chunks: Buffer[] = [];
  let bytes = 0;
  /** Set while the response is held for a transform: everything written, and the reason phrase. */
  let transform: ((body: Buffer) => Promise<Buffer>) | undefined;
  let held: Buffer[] = [];
  let heldBytes = 0;
  let heldReason: string | undefined;
  let released = false;

  const finish = (result: CaptureResult): void => {
    if (done) return;
    done = true;
    chunks = [];
    if (outliveTimer !== undefined) clearTimeout(outliveTimer);
    if (watchdog !== undefined) clearTimeout(watchdog);
    res.removeListener('finish', onFinish);
    res.removeListener('close', onClose);
    hooks.onDone(result);
  };

  /** The longest quiet time allowed now (0: none). */
  const quietLimit = (): number => (detached ? Math.min(ABANDON_AFTER, hooks.idle || ABANDON_AFTER) : (hooks.idle ?? 0));
  /** Ends a response that went quiet: `abandoned` once its client left, else `stalled` (and cut). */
  const checkQuiet = (): void => {
    watchdog = undefined;
    if (done || diverted) return;
    const limit = quietLimit();
    const quiet = Date.now() - lastWrite;
    if (quiet < limit) return void (watchdog = setTimeout(checkQuiet, limit - quiet).unref());
    if (detached) return finish({ ok: false, reason: 'abandoned' });
    debug('stalled: no byte for %d ms, the response is cut', quiet);
    finish({ ok: false, reason: 'stalled' });
    res.destroy();
  };
  /** Starts watching for a quiet response (from the headers on, and again when the client leaves). */
  const watch = (): void => {
    const limit = quietLimit();
    if (limit <= 0 || done) return;
    lastWrite = Date.now();
    if (watchdog !== undefined) clearTimeout(watchdog);
    watchdog = setTimeout(checkQuiet, limit).unref();
  };

  const decide = (code: number): void => {
    if (decided) return;
    decided = true;
    watch();
    status = code;
    headers = res.getHeaders();
    keeping = hooks.onHeaders(code, headers);
    // A diverted response is replaced whole: nothing of the handler's is held or transformed.
    if (!diverted) transform = hooks.transform?.(code, headers);
  };

  /**
   * A copy of a written chunk. Never the caller's memory: a handler may reuse its Buffer (or the
   * memory under a Uint8Array view) once the write callback ran, and what is kept must stay the
   * bytes that were sent. A string is encoded into new memory; anything else is copied.
   */
  const copyOf = (chunk: unknown, encoding: unknown): Buffer | undefined =>
    typeof chunk === 'string'
      ? Buffer.from(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8')
      : chunk instanceof Uint8Array
        ? Buffer.copyBytesFrom(chunk)
        : undefined;

  /**
   * Holds a chunk for the transform; calls a write callback as if it had been written. Past
   * `maxBytes` held, the response is sent as written from then on (the transform is skipped)
   * rather than buffered without bound. Returns whether the response is still held.
   */
  const hold = (chunk: unknown, rest: unknown[]): boolean => {
    if (chunk !== undefined && chunk !== null && typeof chunk !== 'function') {
      const buf = copyOf(chunk, rest[0]);
      if (buf !== undefined) (held.push(buf), (heldBytes += buf.length));
    }
    const cb = [chunk, ...rest].find((a) => typeof a === 'function') as (() => void) | undefined;
    if (cb !== undefined) process.nextTick(cb);
    if (heldBytes <= maxBytes) return true;
    debug('transform skipped: body over %d bytes', maxBytes);
    transform = undefined;
    if (heldReason === undefined) (origWriteHead as (c: number) => ServerResponse).call(res, status);
    else (origWriteHead as (c: number, r: string) => ServerResponse).call(res, status, heldReason);
    for (const buf of held) (origWrite as (c: Buffer) => boolean).call(res, buf);
    held = [];
    return false;
  };

  /** Sends the held response, transformed: its real headers now, then the new body. */
  const release = (): void => {
    const fn = transform!;
    const body = held.length === 1 ? held[0]! : Buffer.concat(held);
    held = [];
    fn(body).then(
      (out) => {
        if (res.destroyed) return;
        // The body changed: its length and validators describe the handler's bytes, not these.
        res.setHeader('content-length', out.length);
        res.removeHeader('etag');
        res.removeHeader('last-modified');
        if (heldReason === undefined) (origWriteHead as (c: number) => ServerResponse).call(res, status);
        else (origWriteHead as (c: number, r: string) => ServerResponse).call(res, status, heldReason);
        (origEnd as (chunk: Buffer) => ServerResponse).call(res, out);
      },
      (error: unknown) => {
        debug('transform failed: %O', error);
        if (res.destroyed) return;
        // The handler's response is still good to store; only this client's assembled copy failed.
        for (const name of res.getHeaderNames()) res.removeHeader(name);
        res.setHeader('content-type', 'text/plain; charset=utf-8');
        res.setHeader('content-length', Buffer.byteLength(ERROR_TEXT[500]));
        (origWriteHead as (c: number) => ServerResponse).call(res, 500);
        (origEnd as (chunk: string) => ServerResponse).call(res, ERROR_TEXT[500]);
      },
    );
  };

  const keep = (chunk: unknown, encoding: unknown): void => {
    if (!keeping || chunk === undefined || chunk === null || typeof chunk === 'function') return;
    const buf = copyOf(chunk, encoding);
    if (buf === undefined) return;
    bytes += buf.length;
    if (bytes > maxBytes) {
      debug('pass: body over %d bytes', maxBytes);
      keeping = false;
      chunks = [];
      return;
    }
    chunks.push(buf);
  };

  res.writeHead = function writeHead(this: ServerResponse, code: number, ...rest: unknown[]) {
    if (passthrough) return (origWriteHead as (...a: unknown[]) => ServerResponse).call(this, code, ...rest);
    if (diverted) return this;
    // Apply headers passed to writeHead through setHeader, so getHeaders() sees all of them
    // (the same technique as the on-headers package).
    let reason: string | undefined;
    let obj: unknown = rest[0];
    if (typeof obj === 'string') {
      reason = obj;
      obj = rest[1];
    }
    if (!this.headersSent && obj !== undefined && obj !== null) {
      if (Array.isArray(obj)) {
        if (obj.length > 0 && Array.isArray(obj[0])) for (const [k, v] of obj as Array<[string, string]>) this.appendHeader(k, v);
        else for (let i = 0; i + 1 < obj.length; i += 2) this.appendHeader(String(obj[i]), obj[i + 1] as string);
      } else {
        for (const [k, v] of Object.entries(obj as OutgoingHttpHeaders)) if (v !== undefined) this.setHeader(k, v);
      }
    }
    if (!this.headersSent) decide(code);
    if (diverted || detached) return this;
    if (transform !== undefined && !this.headersSent) {
      status = code;
      heldReason = reason;
      return this;
    }
    return reason === undefined ? origWriteHead.call(this, code) : (origWriteHead as (c: number, r: string) => ServerResponse).call(this, code, reason);
  } as WriteHead;

  res.write = function write(this: ServerResponse, chunk: unknown, ...rest: unknown[]) {
    if (passthrough) return (origWrite as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
    if (watchdog !== undefined) lastWrite = Date.now();
    if (!diverted && !this.headersSent && !decided) decide(this.statusCode);
    if (diverted) {
      callLater(rest);
      return true;
    }
    if (detached) {
      if (!done) keep(chunk, rest[0]);
      callLater(rest);
      return true;
    }
    if (!done && !this.writableEnded) keep(chunk, rest[0]);
    if (transform !== undefined && !this.headersSent) {
      hold(chunk, rest);
      return true;
    }
    return (origWrite as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
  } as Write;

  res.end = function end(this: ServerResponse, chunk?: unknown, ...rest: unknown[]) {
    if (passthrough) return (origEnd as (...a: unknown[]) => ServerResponse).call(this, chunk, ...rest);
    if (!diverted && !this.headersSent && !decided) decide(this.statusCode);
    if (diverted) {
      callLater(typeof chunk === 'function' ? [chunk] : rest);
      finish({ ok: false, reason: 'diverted' });
      return this;
    }
    if (detached) {
      if (!done && typeof chunk !== 'function') keep(chunk, rest[0]);
      callLater(typeof chunk === 'function' ? [chunk] : rest);
      onFinish();
      return this;
    }
    if (!done && !this.writableEnded) keep(chunk, rest[0]);
    if (transform !== undefined && !this.headersSent) {
      if (released) return this;
      released = true;
      if (hold(chunk, rest)) release();
      else (origEnd as () => ServerResponse).call(this);
      return this;
    }
    return (origEnd as (...a: unknown[]) => ServerResponse).call(this, chunk, ...rest);
  } as End;

  const onFinish = (): void => {
    if (!decided) decide(res.statusCode);
    if (!keeping) return finish({ ok: false, reason: bytes > maxBytes ? 'too large' : 'not kept' });
    const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, bytes);
    const declared = headers['content-length'];
    if (declared !== undefined && Number(declared) !== body.length) {
      return finish({ ok: false, reason: 'content-length mismatch' });
    }
    finish({ ok: true, status, headers: preset === undefined ? headers : withoutPreset(headers, preset), body });
  };
  // 'close' before 'finish': the client went away or the response was destroyed mid-body. A
  // render that may still be kept goes on without its client, for at most `outlive` ms; but
  // not when this side destroyed the connection (a framework does so when a handler fails
  // after its headers went out): only a client that closed or reset it has "left".
  const socket = res.socket;
  const onClose = (): void => {
    if (done) return;
    const maxMs = hooks.outlive ?? 0;
    const clientLeft = socket !== null && (socket.readableEnded || socket.errored !== null);
    if (!clientLeft || maxMs <= 0 || (decided && !keeping) || res.writableEnded || transform !== undefined) return finish({ ok: false, reason: 'aborted' });
    detach(maxMs);
  };
  /** `left`: the client went away (a handler may stop then: watched); else it was answered here. */
  const detach = (maxMs: number, left = true): void => {
    if (detached) return;
    detached = true;
    debug('client gone: the render goes on without it');
    if (left) watch();
    else if (watchdog !== undefined) (clearTimeout(watchdog), (watchdog = undefined));
    outliveTimer = setTimeout(() => finish({ ok: false, reason: 'aborted' }), maxMs);
    outliveTimer.unref();
  };
  res.once('finish', onFinish);
  res.once('close', onClose);

  return {
    abort(reason, error) {
      keeping = false;
      // A held response is no longer transformed: whatever the caller writes next (a 500) goes out as is.
      transform = undefined;
      held = [];
      finish({ ok: false, reason, error });
    },
    answer(code, text, extra = {}) {
      const socket = res.socket;
      // Only a real connection: a synthetic one (fetch adapter, background render) has no wire.
      if (done || diverted || detached || res.headersSent || !(socket instanceof Socket) || socket.destroyed) return false;
      // Written on the connection itself, so the handler's response object stays untouched (it
      // may still set headers and end); the connection closes after it (no keep-alive reuse).
      const body = Buffer.from(text);
      let head = `HTTP/1.1 ${code} ${STATUS_TEXT[code] ?? 'Error'}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${body.length}\r\nconnection: close\r\n`;
      for (const [name, value] of Object.entries(extra)) head += `${name}: ${value}\r\n`;
      detach(hooks.outlive ?? 0, false);
      res.removeListener('close', onClose);
      socket.end(Buffer.concat([Buffer.from(`${head}\r\n`, 'latin1'), body]));
      if ((hooks.outlive ?? 0) <= 0) finish({ ok: false, reason: 'answered' });
      return true;
    },
    divert(write) {
      if (done || diverted || detached || res.headersSent) return false;
      diverted = true;
      keeping = false;
      chunks = [];
      transform = undefined;
      held = [];
      // The replacement's own finish/close are not the handler's: the capture now ends when the
      // handler calls end().
      res.removeListener('finish', onFinish);
      res.removeListener('close', onClose);
      debug('divert');
      passthrough = true;
      try {
        write();
      } finally {
        passthrough = false;
      }
      return true;
    },
  };
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

/** A socket that accepts and discards everything: the "connection" of a background render. */
class NullSocket extends Duplex {
  remoteAddress: string | undefined = '127.0.0.1';
  readonly remotePort = 0;
  readonly remoteFamily = 'IPv4';
  readonly localAddress = '127.0.0.1';
  readonly localPort = 0;
  readonly encrypted = false;
  override _read(): void {}
  override _write(_chunk: unknown, _enc: BufferEncoding, cb: (error?: Error | null) => void): void {
    cb();
  }
  setTimeout(): this {
    return this;
  }
  setNoDelay(): this {
    return this;
  }
  setKeepAlive(): this {
    return this;
  }
}

/**
 * Feeds a body into a synthetic request as it arrives (its reader limits what it takes, as the
 * flush endpoint does); a failing body destroys the request.
 */
async function pump(body: AsyncIterable<Uint8Array>, req: IncomingMessage): Promise<void> {
  try {
    for await (const chunk of body) {
      if (req.destroyed) return;
      req.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    }
    req.complete = true;
    req.push(null);
  } catch (error) {
    req.destroy(error as Error);
  }
}

/** What a background render requests. */
export interface SyntheticRequest {
  method?: string;
  url: string;
  headers: Record<string, string>;
  /** The request body (default: none). */
  body?: AsyncIterable<Uint8Array> | null;
  /** The client address the request reports (default: loopback, the cache itself). */
  remoteAddress?: string | undefined;
}

/**
 * The head of a synthetic request on `socket` (a stand-in: nothing is read from it): method,
 * target and `headers` as given (names already lower-case), no raw headers, no body.
 */
export function requestHead(init: { method?: string; url: string; headers: Record<string, string> }, socket: object): IncomingMessage {
  const req = new IncomingMessage(socket as never);
  req.method = init.method ?? 'GET';
  req.url = init.url;
  req.httpVersion = '1.1';
  req.httpVersionMajor = 1;
  req.httpVersionMinor = 1;
  req.headers = init.headers;
  return req;
}

/** A whole request built from `init` on `socket`: its head, raw headers and body. */
function syntheticRequest(init: SyntheticRequest, socket: object): IncomingMessage {
  const headers: Record<string, string> = {};
  const raw: string[] = [];
  for (const [k, v] of Object.entries(init.headers)) {
    headers[k.toLowerCase()] = v;
    raw.push(k, v);
  }
  const req = requestHead({ method: init.method, url: init.url, headers }, socket);
  req.rawHeaders = raw;
  if (init.body === undefined || init.body === null) {
    req.complete = true;
    req.push(null);
  } else void pump(init.body, req);
  return req;
}

/** Takes the response off its socket and closes the socket. */
function disposer(res: ServerResponse, socket: NullSocket): () => void {
  return () => {
    if (res.socket) res.detachSocket(socket as never);
    socket.destroy();
  };
}

/**
 * A real IncomingMessage/ServerResponse pair with no client behind it, so any Node handler
 * (raw, Express, Connect, Koa) can render in the background exactly as for a client.
 */
export function syntheticExchange(init: SyntheticRequest): { req: IncomingMessage; res: ServerResponse; dispose(): void } {
  const socket = new NullSocket();
  if ('remoteAddress' in init) socket.remoteAddress = init.remoteAddress;
  const req = syntheticRequest(init, socket);
  const res = new ServerResponse(req);
  res.assignSocket(socket as never);
  return { req, res, dispose: disposer(res, socket) };
}

/**
 * The same pair, but the response gets its socket only on `connect()`: until then what is
 * written is buffered by Node (as for a pipelined response waiting for the socket) and nothing
 * is sent. An adapter whose client is not a Node socket (the Fetch adapter reads what is written
 * through the response's methods) connects only when the response outlives the current call, so
 * a hit, written at once, costs no socket at all. `connect()` returns the disposer. The request
 * carries an address-only stand-in for its socket (`remoteAddress`, for the flush endpoint's guard).
 */
export function deferredExchange(init: SyntheticRequest): { req: IncomingMessage; res: ServerResponse; connect(): () => void } {
  const req = syntheticRequest(init, { remoteAddress: init.remoteAddress });
  const res = new ServerResponse(req);
  return {
    req,
    res,
    connect() {
      const socket = new NullSocket();
      res.assignSocket(socket as never);
      return disposer(res, socket);
    },
  };
}
