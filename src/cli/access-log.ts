/**
 * The access log of `stratacache serve`: one line per finished request with method, path,
 * status, cache status, body bytes and milliseconds (and the upstream failure's cause when the
 * request had one), in the common log format plus those fields, or as JSON lines.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

/** Access log formats. */
export type AccessLogFormat = 'clf' | 'json';

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const pad = (n: number): string => String(n).padStart(2, '0');

/** CLF time: `01/Dec/2026:03:53:32 +0000` (always UTC). */
function clfTime(d: Date): string {
  return `${pad(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} +0000`;
}

/** A header's value among `writeHead` headers (an object, or a flat or paired array), or undefined. */
function headerIn(headers: unknown, name: string): unknown {
  if (Array.isArray(headers)) {
    if (Array.isArray(headers[0])) return (headers as Array<[string, unknown]>).find(([k]) => String(k).toLowerCase() === name)?.[1];
    for (let i = 0; i + 1 < headers.length; i += 2) if (String(headers[i]).toLowerCase() === name) return headers[i + 1];
    return undefined;
  }
  if (headers !== null && typeof headers === 'object') {
    for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === name) return v;
  }
  return undefined;
}

/** The cache status the response carried (`X-Cache`, else the `Cache-Status` verdict), or `-`. */
function cacheStatus(res: ServerResponse, written: unknown): string {
  const x = res.getHeader('x-cache') ?? headerIn(written, 'x-cache');
  if (x !== undefined) return String(x);
  const cs = res.getHeader('cache-status') ?? headerIn(written, 'cache-status');
  if (cs === undefined) return '-';
  const m = /;\s*(hit|fwd=[a-z-]+)/i.exec(String(cs));
  return m === null ? '-' : m[1]!.toUpperCase();
}

/**
 * Wraps a handler so that each request writes one log line to `write` when its response closes.
 * Counts body bytes by hooking `write`/`end` (the cache inside hooks them again after us).
 */
export function withAccessLog(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  format: AccessLogFormat,
  write: (line: string) => void,
  upstreamError: (req: IncomingMessage) => string | undefined = () => undefined,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const started = performance.now();
    let bytes = 0;
    const count = (chunk: unknown, encoding?: unknown): void => {
      if (typeof chunk === 'string') bytes += Buffer.byteLength(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
      else if (chunk instanceof Uint8Array) bytes += chunk.byteLength;
    };
    const write0 = res.write;
    const end0 = res.end;
    const writeHead0 = res.writeHead;
    // Headers given to writeHead directly (the cache's hit path) are not visible to getHeader().
    let written: unknown;
    res.writeHead = function (this: ServerResponse, ...args: unknown[]) {
      written = args.find((a) => a !== null && typeof a === 'object');
      return (writeHead0 as (...a: unknown[]) => ServerResponse).apply(this, args);
    } as typeof res.writeHead;
    res.write = function (this: ServerResponse, chunk: unknown, ...rest: unknown[]) {
      count(chunk, rest[0]);
      return (write0 as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
    } as typeof res.write;
    res.end = function (this: ServerResponse, chunk?: unknown, ...rest: unknown[]) {
      if (typeof chunk !== 'function') count(chunk, rest[0]);
      return (end0 as (...a: unknown[]) => ServerResponse).call(this, chunk, ...rest);
    } as typeof res.end;
    res.once('close', () => {
      const ms = Math.round(performance.now() - started);
      const status = res.headersSent ? res.statusCode : 0;
      const path = req.url ?? '/';
      const method = req.method ?? '-';
      const cache = cacheStatus(res, written);
      const failure = upstreamError(req);
      if (format === 'json') {
        const line = { time: new Date().toISOString(), remote: req.socket?.remoteAddress ?? '-', method, path, status, cache, bytes, ms, complete: res.writableFinished };
        write(JSON.stringify(failure === undefined ? line : { ...line, upstreamError: failure }));
      } else {
        const cause = failure === undefined ? '' : ` upstream-error="${failure.replace(/["\\]/g, '\\$&')}"`;
        write(`${req.socket?.remoteAddress ?? '-'} - - [${clfTime(new Date())}] "${method} ${path} HTTP/${req.httpVersion}" ${status} ${bytes} ${cache} ${ms}ms${res.writableFinished ? '' : ' aborted'}${cause}`);
      }
    });
    handler(req, res);
  };
}
