/**
 * Runs a handler's response through a tee: the client receives the bytes as the handler writes
 * them (no added time to first byte, back-pressure untouched), and a copy is kept for the cache
 * until it turns out not storable or too large. Also builds request/response pairs with no client
 * connection, for background regeneration.
 */
import { IncomingMessage, ServerResponse, type OutgoingHttpHeaders } from 'node:http';
import { Duplex } from 'node:stream';
import createDebug from 'debug';

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
}

/** Handle on a capture in progress. */
export interface CaptureControl {
  /** Marks the capture failed (handler threw, stream broke); the response is never stored. */
  abort(reason: string, error?: unknown): void;
}

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
  let status = 200;
  let headers: OutgoingHttpHeaders = {};
  // What middleware in front of the cache already set (a request id, CORS headers): a hit must
  // not replay one client's values to another, so only what the render set or changed is kept.
  const preset = res.getHeaderNames().length === 0 ? undefined : res.getHeaders();
  let chunks: Buffer[] = [];
  let bytes = 0;

  const finish = (result: CaptureResult): void => {
    if (done) return;
    done = true;
    chunks = [];
    res.removeListener('finish', onFinish);
    res.removeListener('close', onClose);
    hooks.onDone(result);
  };

  const decide = (code: number): void => {
    if (decided) return;
    decided = true;
    status = code;
    headers = res.getHeaders();
    keeping = hooks.onHeaders(code, headers);
  };

  const keep = (chunk: unknown, encoding: unknown): void => {
    if (!keeping || chunk === undefined || chunk === null || typeof chunk === 'function') return;
    const buf =
      typeof chunk === 'string'
        ? Buffer.from(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8')
        : Buffer.isBuffer(chunk)
          ? chunk
          : chunk instanceof Uint8Array
            ? Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
            : undefined;
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
    return reason === undefined ? origWriteHead.call(this, code) : (origWriteHead as (c: number, r: string) => ServerResponse).call(this, code, reason);
  } as WriteHead;

  res.write = function write(this: ServerResponse, chunk: unknown, ...rest: unknown[]) {
    if (!this.headersSent && !decided) decide(this.statusCode);
    if (!done && !this.writableEnded) keep(chunk, rest[0]);
    return (origWrite as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
  } as Write;

  res.end = function end(this: ServerResponse, chunk?: unknown, ...rest: unknown[]) {
    if (!this.headersSent && !decided) decide(this.statusCode);
    if (!done && !this.writableEnded) keep(chunk, rest[0]);
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
  // 'close' before 'finish': the client went away or the response was destroyed mid-body.
  const onClose = (): void => finish({ ok: false, reason: 'aborted' });
  res.once('finish', onFinish);
  res.once('close', onClose);

  return {
    abort(reason, error) {
      keeping = false;
      finish({ ok: false, reason, error });
    },
  };
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
  readonly remoteAddress = '127.0.0.1';
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

/** What a background render requests. */
export interface SyntheticRequest {
  method?: string;
  url: string;
  headers: Record<string, string>;
}

/**
 * A real IncomingMessage/ServerResponse pair with no client behind it, so any Node handler
 * (raw, Express, Connect, Koa) can render in the background exactly as for a client.
 */
export function syntheticExchange(init: SyntheticRequest): { req: IncomingMessage; res: ServerResponse; dispose(): void } {
  const socket = new NullSocket();
  const req = new IncomingMessage(socket as never);
  req.method = init.method ?? 'GET';
  req.url = init.url;
  req.httpVersion = '1.1';
  req.httpVersionMajor = 1;
  req.httpVersionMinor = 1;
  const raw: string[] = [];
  for (const [k, v] of Object.entries(init.headers)) {
    req.headers[k.toLowerCase()] = v;
    raw.push(k, v);
  }
  req.rawHeaders = raw;
  req.complete = true;
  req.push(null);
  const res = new ServerResponse(req);
  res.assignSocket(socket as never);
  return {
    req,
    res,
    dispose() {
      if (res.socket) res.detachSocket(socket as never);
      socket.destroy();
    },
  };
}
