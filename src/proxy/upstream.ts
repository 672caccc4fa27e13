/**
 * Reverse-proxy mode: a plain `(req, res)` handler that forwards a request to an upstream base URL
 * and streams the answer back. Wrapped by `cache.wrap()` it makes the cache a standalone caching
 * reverse proxy (the CLI does exactly that); since it is an ordinary handler, background renders
 * (stale-while-revalidate, refetch, priming) run through it with no client connection.
 */
import http, { type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import https from 'node:https';
import createDebug from 'debug';
import { describeValue, integerOption } from '../options/validate.js';
import { type Milliseconds } from '../options/units.js';
import { HOP_BY_HOP, headerList } from '../policy.js';

const debug = createDebug('stratacache:proxy');

/** Options of {@link createUpstreamHandler}. */
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
   * Keep-alive sockets kept open to the upstream.
   * @default 64
   */
  maxSockets?: number;
}

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

/**
 * Creates a handler forwarding every request to `upstream` (an `http:` or `https:` base URL; its
 * path is prefixed to the request's). Upstream failures answer 502, a header timeout 504.
 * @throws TypeError/RangeError for a bad upstream URL or option, naming it.
 */
export function createUpstreamHandler(upstream: string, options: UpstreamOptions = {}): (req: IncomingMessage, res: ServerResponse) => void {
  let base: URL;
  try {
    base = new URL(upstream);
  } catch {
    throw new TypeError(`expected upstream to be an http(s) URL, got ${describeValue(upstream)}`);
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new TypeError(`expected upstream to be an http(s) URL, got ${describeValue(upstream)}`);
  const timeout = integerOption('timeout', options.timeout ?? 30_000, 0);
  const maxSockets = integerOption('maxSockets', options.maxSockets ?? 64, 1);
  const preserveHost = options.preserveHost ?? false;
  if (typeof preserveHost !== 'boolean') throw new TypeError(`expected options.preserveHost to be a boolean, got ${describeValue(preserveHost)}`);
  const transport = base.protocol === 'https:' ? https : http;
  const agent = new transport.Agent({ keepAlive: true, maxSockets });
  const prefix = base.pathname.replace(/\/$/, '');

  return (req, res) => {
    const headers = endToEnd(req.headers);
    const clientHost = req.headers.host;
    if (!preserveHost) {
      headers.host = base.host;
      if (clientHost !== undefined) headers['x-forwarded-host'] = clientHost;
    }
    const remote = req.socket?.remoteAddress;
    if (remote !== undefined) headers['x-forwarded-for'] = req.headers['x-forwarded-for'] ? `${String(req.headers['x-forwarded-for'])}, ${remote}` : remote;
    const target = prefix + (req.url ?? '/');
    let answered = false;
    const fail = (status: 502 | 504, reason: string): void => {
      debug('upstream %s: %s %s', reason, req.method, target);
      if (answered || res.headersSent) {
        res.destroy();
        return;
      }
      answered = true;
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
      res.end(status === 504 ? 'Gateway Timeout' : 'Bad Gateway');
    };
    const upstreamReq = transport.request(
      { protocol: base.protocol, hostname: base.hostname, port: base.port, method: req.method, path: target, headers, agent },
      (upstreamRes) => {
        if (timer !== undefined) clearTimeout(timer);
        answered = true;
        res.writeHead(upstreamRes.statusCode ?? 502, endToEnd(upstreamRes.headers));
        upstreamRes.pipe(res);
        // A body cut short upstream must not look complete downstream (nor be stored).
        upstreamRes.on('aborted', () => res.destroy());
        upstreamRes.on('error', () => res.destroy());
      },
    );
    const timer =
      timeout > 0
        ? setTimeout(() => {
            fail(504, 'timeout');
            upstreamReq.destroy();
          }, timeout)
        : undefined;
    upstreamReq.on('error', (error) => {
      if (timer !== undefined) clearTimeout(timer);
      fail(502, error.message);
    });
    // The client left: stop the upstream work too.
    res.on('close', () => {
      if (!res.writableFinished) upstreamReq.destroy();
    });
    req.pipe(upstreamReq);
  };
}
