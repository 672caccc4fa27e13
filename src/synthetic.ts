/**
 * Request/response pairs with no client connection: a real IncomingMessage and ServerResponse on
 * a socket that discards everything, so any Node handler (raw, Express, Connect, Koa) renders in
 * the background exactly as for a client (background regeneration, sub-requests), and the Fetch
 * adapter's deferred pair.
 */
import { IncomingMessage, ServerResponse } from 'node:http';
import { Duplex } from 'node:stream';

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
