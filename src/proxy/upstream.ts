/**
 * Reverse-proxy mode: {@link createProxy} returns a plain `(req, res)` handler that forwards a
 * request to an upstream base URL and streams the answer back. Wrapped by `cache.wrap()` it makes
 * the cache a standalone caching reverse proxy (the CLI does exactly that); since it is an ordinary
 * handler, background renders (stale-while-revalidate, refetch, priming) run through it with no
 * client connection.
 *
 * Transport: `node:http`'s keep-alive Agent. It bounds the pool (`maxSockets`), streams both ways
 * with back-pressure, and reports interim 1xx responses (`information`) so they can be relayed;
 * undici would add a dependency for no capability this handler needs.
 */
import http, { type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import https from 'node:https';
import createDebug from 'debug';
import { describeValue, integerOption } from '../options/validate.js';
import { type Milliseconds } from '../options/units.js';
import { HOP_BY_HOP, headerList } from '../policy.js';
import { ERROR_TEXT } from '../serve.js';

const debug = createDebug('stratacache:proxy');

/** Options of {@link createProxy} besides the upstream. */
export interface UpstreamOptions {
  /**
   * Send the client's `Host` to the upstream. `false` sends the upstream's own host and passes
   * the client's as `X-Forwarded-Host` (the request's `Host` is part of the cache key, so this
   * header cannot poison an entry).
   * @default false
   */
  preserveHost?: boolean;
  /**
   * How long to wait for the upstream's response headers, in ms; past it the answer is a 504
   * (which the cache's stale-on-error turns into the stale copy when it has one). `0` waits forever.
   * @default 30000
   */
  timeout?: Milliseconds;
  /**
   * Most connections open to the upstream at once (idle ones are kept alive for reuse); further
   * requests queue for a free connection.
   * @default 64
   */
  maxSockets?: number;
  /**
   * Called once per upstream failure a client or the cache sees: a connection that failed, a
   * timeout, a response cut short. For logs (the CLI writes an error log line from it); what it
   * throws is ignored, and it cannot change the answer (502, 504, or the cut response).
   * @default undefined (failures go to `DEBUG=stratacache:proxy` only)
   */
  onError?: ((failure: UpstreamFailure, req: IncomingMessage) => void) | undefined;
}

/** One upstream failure, as {@link UpstreamOptions.onError} receives it. */
export interface UpstreamFailure {
  /**
   * The cause, short and the same for every failure of one kind: `timeout`, `cut` (the body
   * stopped short), or the error's code (`ECONNREFUSED`, `ECONNRESET`, `ENOTFOUND`), else its message.
   */
  cause: string;
  /** The cause as a log says it: `connect ECONNREFUSED 127.0.0.1:9`, `timed out (no response headers within 30000 ms)`. */
  message: string;
  /** What the client was answered: 502, 504, or `undefined` when the response had started and was cut. */
  status: 502 | 504 | undefined;
  /** The request's method. */
  method: string;
  /** The upstream URL asked: the upstream base and the request's path. */
  url: string;
}

/** Options of {@link createProxy}. */
export interface ProxyOptions extends UpstreamOptions {
  /**
   * The upstream's base URL (`http:` or `https:`); its path is prefixed to every request's path.
   * Required.
   */
  upstream: string;
}

/** Methods a retry cannot repeat harmfully (RFC 9110 §9.2.2). */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/** Copies headers minus hop-by-hop ones and those the `Connection` header names (RFC 9110 §7.6.1). */
function endToEnd(headers: IncomingMessage['headers']): OutgoingHttpHeaders {
  const named = new Set(headerList(headers.connection));
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || named.has(name)) continue;
    out[name] = value;
  }
  return out;
}

/** True when the request carries a body (RFC 9112 §6.3: only Content-Length or Transfer-Encoding announce one). */
function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/**
 * Relays an interim (1xx) response to the client (RFC 9110 §15.2), e.g. `103 Early Hints`. Not 100
 * (Node's server already answered `Expect: 100-continue`) nor 101 (upgrades are not proxied), not
 * to HTTP/1.0 clients, and only while the final response has not started. Written straight to the
 * socket, as Node's own `writeEarlyHints()` does: nothing else is on the wire before the final head.
 */
function relayInterim(req: IncomingMessage, res: ServerResponse, info: http.InformationEvent): void {
  const status = info.statusCode;
  if (status === 100 || status === 101 || status < 100 || status > 199) return;
  if (req.httpVersionMajor !== 1 || req.httpVersionMinor === 0 || res.headersSent) return;
  const socket = res.socket;
  if (socket === null || socket.destroyed) return;
  let head = `HTTP/1.1 ${status} ${info.statusMessage.replace(/[\r\n]/g, '')}\r\n`;
  const raw = info.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (HOP_BY_HOP.has(raw[i]!.toLowerCase())) continue;
    head += `${raw[i]}: ${raw[i + 1]}\r\n`;
  }
  socket.write(`${head}\r\n`, 'latin1');
}

/**
 * Creates a handler forwarding every request to `options.upstream` (an `http:` or `https:` base
 * URL; its path is prefixed to the request's), so `cache.wrap(createProxy({ upstream }))` is a
 * caching reverse proxy. Hop-by-hop headers (and those `Connection` names) are dropped both ways;
 * `X-Forwarded-For`, `-Proto` and `-Host` are set. A refused or reset connection answers 502, no
 * response headers within `timeout` 504 (the cache's stale-on-error then serves its stale copy).
 * @throws TypeError/RangeError for a bad upstream URL or option, naming it.
 */
export function createProxy(options: ProxyOptions): (req: IncomingMessage, res: ServerResponse) => void {
  if (options === null || typeof options !== 'object') throw new TypeError(`expected options to be an object with an upstream URL, got ${describeValue(options)}`);
  const upstream = options.upstream;
  let base: URL;
  try {
    base = new URL(upstream);
  } catch {
    throw new TypeError(`expected options.upstream to be an http(s) URL, got ${describeValue(upstream)}`);
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new TypeError(`expected options.upstream to be an http(s) URL, got ${describeValue(upstream)}`);
  const timeout = integerOption('timeout', options.timeout ?? 30_000, 0);
  const maxSockets = integerOption('maxSockets', options.maxSockets ?? 64, 1);
  const preserveHost = options.preserveHost ?? false;
  if (typeof preserveHost !== 'boolean') throw new TypeError(`expected options.preserveHost to be a boolean, got ${describeValue(preserveHost)}`);
  const onError = options.onError;
  if (onError !== undefined && typeof onError !== 'function') throw new TypeError(`expected options.onError to be a function, got ${describeValue(onError)}`);
  /** Tells `onError` (never throwing into the proxy) and the debug log. */
  const report = (req: IncomingMessage, target: string, status: 502 | 504 | undefined, error: { cause: string; message: string }): void => {
    debug('upstream %s: %s %s', error.message, req.method, target);
    if (onError === undefined) return;
    try {
      onError({ ...error, status, method: req.method ?? 'GET', url: base.origin + target }, req);
    } catch (thrown) {
      debug('onError threw: %s', (thrown as Error).message);
    }
  };
  const causeOf = (error: Error): { cause: string; message: string } => ({ cause: (error as NodeJS.ErrnoException).code ?? error.message, message: error.message });
  const transport = base.protocol === 'https:' ? https : http;
  const agent = new transport.Agent({ keepAlive: true, maxSockets });
  const prefix = base.pathname.replace(/\/$/, '');

  return (req, res) => {
    const headers = endToEnd(req.headers);
    // What this hop saw (de facto X-Forwarded-*): the client's Host and scheme replace any the
    // request carried; its address is appended to the chain.
    const clientHost = req.headers.host;
    if (!preserveHost) headers.host = base.host;
    if (clientHost !== undefined) headers['x-forwarded-host'] = clientHost;
    headers['x-forwarded-proto'] = (req.socket as { encrypted?: boolean } | null)?.encrypted === true ? 'https' : 'http';
    const remote = req.socket?.remoteAddress;
    if (remote !== undefined) headers['x-forwarded-for'] = req.headers['x-forwarded-for'] ? `${String(req.headers['x-forwarded-for'])}, ${remote}` : remote;
    const target = prefix + (req.url ?? '/');
    const withBody = hasBody(req);
    // Only a request that can be sent again as it was may be retried: idempotent and bodiless.
    const retriable = IDEMPOTENT.has(req.method ?? 'GET') && !withBody;
    let answered = false;
    let current: http.ClientRequest | undefined;

    // One report per request: the first failure is the cause (a timeout's destroyed socket or a
    // cut body's reset that follows is its consequence). A client that left is no upstream
    // failure (the upstream connection is destroyed on purpose).
    let reported = false;
    let left = false;
    const tell = (status: 502 | 504 | undefined, reason: { cause: string; message: string }): void => {
      if (!reported && !left) report(req, target, status, reason);
      reported = true;
    };
    const fail = (status: 502 | 504, reason: { cause: string; message: string }): void => {
      if (answered || res.headersSent) {
        tell(undefined, reason);
        res.destroy();
        return;
      }
      tell(status, reason);
      answered = true;
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
      res.end(ERROR_TEXT[status]);
    };
    const timer =
      timeout > 0
        ? setTimeout(() => {
            fail(504, { cause: 'timeout', message: `timed out (no response headers within ${timeout} ms)` });
            current?.destroy();
          }, timeout)
        : undefined;

    const send = (fresh: boolean): void => {
      // A retry goes on a new connection (agent: false), never on another pooled socket that may be
      // just as dead (the upstream restarted and closed them all).
      const upstreamReq = transport.request({ protocol: base.protocol, hostname: base.hostname, port: base.port, method: req.method, path: target, headers, agent: fresh ? false : agent });
      current = upstreamReq;
      let responded = false;
      let upstreamRes: IncomingMessage | undefined;
      upstreamReq.on('information', (info) => {
        responded = true;
        relayInterim(req, res, info);
      });
      upstreamReq.on('response', (incoming) => {
        responded = true;
        upstreamRes = incoming;
        if (timer !== undefined) clearTimeout(timer);
        answered = true;
        res.writeHead(incoming.statusCode ?? 502, endToEnd(incoming.headers));
        incoming.pipe(res);
        // A body cut short upstream must not look complete downstream (nor be stored).
        const cut = (): void => {
          tell(undefined, { cause: 'cut', message: 'response body cut short' });
          res.destroy();
        };
        incoming.on('aborted', cut);
        incoming.on('error', () => {
          if (!incoming.complete) cut();
        });
      });
      upstreamReq.on('error', (error) => {
        // The response was complete (by its Content-Length or chunked framing): a later error is
        // about bytes past its end (a broken upstream) and says nothing about this answer.
        if (upstreamRes?.complete) {
          debug('upstream %s after a complete response: %s %s', error.message, req.method, target);
          return;
        }
        // A pooled socket the upstream closed while idle fails on first use; RFC 9112 §9.3.1 allows
        // repeating an idempotent request once when nothing of the response arrived.
        if (!fresh && !responded && !answered && retriable && upstreamReq.reusedSocket) {
          debug('upstream %s on a reused connection: retrying %s %s on a new one', error.message, req.method, target);
          send(true);
          return;
        }
        if (timer !== undefined) clearTimeout(timer);
        fail(502, causeOf(error));
      });
      if (withBody) req.pipe(upstreamReq);
      else upstreamReq.end();
    };
    // The client left: stop the upstream work too.
    res.on('close', () => {
      if (timer !== undefined) clearTimeout(timer);
      if (res.writableFinished) return;
      left = !reported;
      current?.destroy();
    });
    send(false);
  };
}

/**
 * @deprecated Use {@link createProxy}: `createProxy({ upstream, ...options })`.
 */
export function createUpstreamHandler(upstream: string, options: UpstreamOptions = {}): (req: IncomingMessage, res: ServerResponse) => void {
  return createProxy({ ...options, upstream });
}
