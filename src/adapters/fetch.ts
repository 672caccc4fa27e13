/**
 * The Fetch-API adapter: wraps `(request: Request, ...rest) => Response | Promise<Response>`
 * (Hono's `app.fetch`, a Next.js route handler, any WHATWG handler) and returns the same shape
 * over the same engine. Each request becomes a synthetic Node request/response pair the engine
 * handles as any other; the handler's Response is written into it (streamed, back-pressure kept),
 * and what the engine writes becomes the client's Response.
 */
import { once } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { deferredExchange, requestHead } from '../synthetic.js';
import type { Engine, Exchange, Runner } from '../engine/types.js';
import { HitResponse, ResponseBridge } from './fetch-response.js';
import { internalError } from './node.js';

/** A WHATWG fetch handler. Extra arguments (Hono's `env`, an execution context) are passed through. */
export type FetchHandler<Rest extends unknown[] = unknown[]> = (request: Request, ...rest: Rest) => Response | Promise<Response>;

/** The Node request under a WHATWG one, when the server passes it along (`@hono/node-server`'s env). */
function incomingOf(rest: readonly unknown[]): IncomingMessage | undefined {
  const env = rest[0] as { incoming?: IncomingMessage } | undefined;
  return typeof env === 'object' && env !== null && typeof env.incoming?.headers === 'object' ? env.incoming : undefined;
}

/**
 * Builds the wrapper. Background renders and
 * data-cache sub-requests call `handler` with a Request built from the engine's synthetic request
 * and no extra arguments.
 */
export function fetchAdapter<Rest extends unknown[]>(engine: Engine, handler: FetchHandler<Rest>): FetchHandler<Rest> {
  if (typeof handler !== 'function') throw new TypeError(`expected handler to be a function, got ${typeof handler}`);
  const run = (req: IncomingMessage, res: ServerResponse, source: { request?: Request; rest: Rest }): Promise<void> =>
    Promise.resolve(handler(toRequest(req, source.request), ...source.rest)).then((response) => writeResponse(response, res));
  const background: Exchange = { run: (req, res) => run(req, res, { rest: [] as unknown[] as Rest }) };
  const regen: Runner = (req, res) => engine.handle(req, res, background);
  background.regen = regen;
  engine.useRunner(regen);

  return (request: Request, ...rest: Rest): Response | Promise<Response> => {
    const method = request.method;
    const incoming = incomingOf(rest);
    let init: ReturnType<typeof initOf> | undefined;
    // A fresh hit is written straight into a Response, returned as is (no promise): no response
    // object, no socket; and when the server passed its Node request along, no copy of it either.
    if (method === 'GET' || method === 'HEAD') {
      const sink = new HitResponse(method === 'HEAD');
      let head: IncomingMessage;
      if (incoming !== undefined && lookupAsIs(incoming, method)) head = incoming;
      else {
        // (Of the headers, the engine may rewrite only Host, from an absolute-form target, as it
        // would again for the full request below.)
        init = initOf(request, method, incoming);
        head = requestHead(init, { remoteAddress: init.remoteAddress });
      }
      if (engine.serveFresh(head, sink)) return sink.response!;
    }
    init ??= initOf(request, method, incoming);
    const exchange = deferredExchange({
      ...init,
      // Reading `body` materializes a lazy Request (as @hono/node-server's is): only when there is one.
      body: method === 'GET' || method === 'HEAD' ? null : (request.body as AsyncIterable<Uint8Array> | null),
    });
    const { req, res } = exchange;
    const bridge = new ResponseBridge(res, method === 'HEAD');
    const ex: Exchange = { run: (r, s) => run(r, s, { request, rest }), regen };
    let served: boolean | Promise<boolean>;
    try {
      served = engine.handle(req, res, ex);
    } catch (error) {
      served = false;
      internalError(res, error);
    }
    // Served from memory at once: the Response is made, no socket needed. Otherwise the response
    // lives on (a render, a wait, an endpoint reading the body): give it its socket now.
    if (served === true && bridge.settled) return bridge.response;
    const dispose = exchange.connect();
    res.once('finish', () => setImmediate(dispose));
    res.once('close', () => setImmediate(dispose));
    if (typeof served !== 'boolean') served.catch((error: unknown) => internalError(res, error));
    return bridge.response;
  };
}

/** What the engine's request is built from: method, target, headers and the client's address. */
function initOf(request: Request, method: string, incoming: IncomingMessage | undefined): { method: string; url: string; headers: Record<string, string>; remoteAddress: string | undefined } {
  return {
    method,
    url: incoming?.url ?? pathOf(request.url),
    headers: incoming === undefined ? headerRecord(request.headers, request.url) : nodeHeaders(incoming),
    remoteAddress: incoming?.socket?.remoteAddress,
  };
}

/**
 * True when the server's Node request can be looked up itself, seen by the engine exactly as the
 * request built from it by {@link initOf}: the same method, an origin-form target (the engine
 * rewrites only an absolute-form one, so nothing of the server's request is changed) and a socket
 * that is not TLS (keys read `socket.encrypted`, which the built request's stand-in lacks).
 */
function lookupAsIs(incoming: IncomingMessage, method: string): boolean {
  return incoming.method === method && incoming.url?.charCodeAt(0) === 47 && (incoming.socket as { encrypted?: boolean } | null)?.encrypted !== true;
}

/** The path and query of an absolute URL. */
function pathOf(url: string): string {
  const start = url.indexOf('/', url.indexOf('//') + 2);
  return start === -1 ? '/' : url.slice(start);
}

/** Request headers as the engine reads them (lower-case names), with `host` from the URL when absent. */
function headerRecord(headers: Headers, url: string): Record<string, string> {
  const out: Record<string, string> = {};
  headers.forEach((value, name) => (out[name] = value));
  out.host ??= new URL(url).host;
  return out;
}

/** The Node request's headers as single strings (repeated ones joined as HTTP allows). */
function nodeHeaders(incoming: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(incoming.headers)) if (value !== undefined) out[name] = Array.isArray(value) ? value.join(', ') : value;
  return out;
}

/**
 * The Request the handler sees: the engine's request (its headers after the cache removed
 * validators and unkeyed headers before a render that will be stored), on the client's origin,
 * with the client's body and abort signal.
 */
function toRequest(req: IncomingMessage, original: Request | undefined): Request {
  const base = original === undefined ? `http://${req.headers.host ?? 'localhost'}` : new URL(original.url).origin;
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) headers.append(name, v);
    else headers.set(name, value);
  }
  const method = req.method ?? 'GET';
  // The client's body was fed into the engine's request (an endpoint of the cache may read it).
  const hasBody = original?.body != null && method !== 'GET' && method !== 'HEAD';
  return new Request(base + (req.url ?? '/'), {
    method,
    headers,
    signal: original?.signal,
    ...(hasBody ? { body: Readable.toWeb(req), duplex: 'half' } : {}),
  } as RequestInit);
}

/**
 * Writes a handler's Response into a Node response: status, headers (each Set-Cookie kept
 * apart), then the body chunk by chunk, waiting for `drain` when the response is full. Rejects
 * when the body stream fails (the response is then cut off by the engine, never stored).
 */
async function writeResponse(response: Response, res: ServerResponse): Promise<void> {
  if (!(response instanceof Response)) throw new TypeError(`expected the handler to return a Response, got ${typeof response}`);
  response.headers.forEach((value, name) => {
    if (name !== 'set-cookie') res.setHeader(name, value);
  });
  const cookies = response.headers.getSetCookie();
  if (cookies.length > 0) res.setHeader('set-cookie', cookies);
  if (response.statusText) res.writeHead(response.status, response.statusText);
  else res.writeHead(response.status);
  const body = response.body;
  if (body === null) {
    res.end();
    return;
  }
  const reader = body.getReader();
  const stop = (): void => void reader.cancel().catch(() => undefined);
  res.once('close', stop);
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (res.destroyed) return;
      if (!res.write(value)) await Promise.race([once(res, 'drain'), once(res, 'close')]);
    }
    res.end();
  } finally {
    res.removeListener('close', stop);
  }
}
