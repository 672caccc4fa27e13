/**
 * `stratacache serve --admin HOST:PORT`: the operator's address, apart from the proxied site:
 * `/metrics` (Prometheus text format, for the scraper: bind it where only the scraper reaches)
 * and the operator console under `/console/` (behind the flush guard: `--flush-allow`,
 * `--flush-token` as the browser login's password). `/` redirects to the console.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { StrataCache } from '../cache.js';
import { UsageError } from './units.js';

/** Where the admin server listens. */
export interface AdminAddress {
  host: string;
  port: number;
}

/** Parses `--admin` (`PORT`, `HOST:PORT` or `[IPv6]:PORT`). */
export function parseAdmin(value: string): AdminAddress {
  const m = /^(?:(\[[0-9a-fA-F:.]+\]|[^:[\]]+):)?(\d{1,5})$/.exec(value.trim());
  const port = m === null ? NaN : Number(m[2]);
  if (m === null || !Number.isInteger(port) || port > 65535) throw new UsageError(`expected --admin to be PORT or HOST:PORT, got ${JSON.stringify(value)}`);
  const host = m[1] === undefined ? '127.0.0.1' : m[1].replace(/^\[|\]$/g, '');
  return { host, port };
}

/** The admin handler of one cache. */
export function adminHandler(cache: StrataCache): (req: IncomingMessage, res: ServerResponse) => void {
  const metrics = cache.metricsHandler();
  // With `flush: false` there is no guard to share: no console, metrics only.
  let page: ReturnType<StrataCache['consoleHandler']> | undefined;
  try {
    page = cache.consoleHandler();
  } catch {
    page = undefined;
  }
  return (req, res) => {
    const url = req.url ?? '/';
    const path = url.split('?', 1)[0]!;
    if (path === '/metrics') return metrics(req, res);
    if (page !== undefined && (path === '/console' || path.startsWith('/console/'))) {
      // The console routes by the part after its mount point; its page URLs are relative.
      if (path === '/console') {
        req.resume();
        res.writeHead(308, { location: '/console/' }).end();
        return;
      }
      req.url = url.slice('/console'.length);
      return page(req, res);
    }
    req.resume();
    if (path === '/' && page !== undefined) res.writeHead(302, { location: '/console/' }).end();
    else res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('Not Found: /metrics and /console/ are served here');
  };
}
