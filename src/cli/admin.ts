/**
 * `stratacache serve --admin HOST:PORT`: the operator's address, apart from the proxied site:
 * `/metrics` (Prometheus text format, for the scraper: bind it where only the scraper reaches),
 * the operator console under `/console/`, and the admin routes (the flush endpoint, `PURGE`,
 * `/_stratacache/stats`), all but `/metrics` behind the flush guard (`--flush-allow`,
 * `--flush-token`, also the console login's password). `/` redirects to the console.
 *
 * The site's own port serves the admin routes only with `--admin-on-main` (`adminOnMain: true`
 * in a config file): a site is what a proxy and the internet reach.
 */
import { isIP } from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { adminRouteOf } from '../adapters/internal.js';
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

/** `--admin-on-main` (a flag) or `adminOnMain` (a config file field): both false when absent. */
export function parseAdminOnMain(flag: unknown, file: unknown): boolean {
  if (flag === true) return true;
  if (file === undefined) return false;
  if (typeof file !== 'boolean') throw new UsageError(`expected config.adminOnMain to be true or false, got ${JSON.stringify(file)}`);
  return file;
}

/** The admin handler of one cache. */
export function adminHandler(cache: StrataCache): (req: IncomingMessage, res: ServerResponse) => void {
  const metrics = cache.metricsHandler();
  // With `flush: false` there is no guard to share: no console, no admin routes, metrics only.
  let page: ReturnType<StrataCache['consoleHandler']> | undefined;
  let routes: ReturnType<StrataCache['adminHandler']> | undefined;
  try {
    page = cache.consoleHandler();
    routes = cache.adminHandler();
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
    const notFound = (): void => {
      req.resume();
      if (path === '/' && page !== undefined) res.writeHead(302, { location: '/console/' }).end();
      else res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('Not Found: /metrics, /console/ and the flush endpoint, PURGE and /_stratacache/stats are served here');
    };
    if (routes !== undefined) return routes(req, res, notFound);
    notFound();
  };
}

/**
 * The site's handler when the admin routes are served on `--admin` only: a request for one of
 * them (the flush endpoint at `flushPath`, PURGE, the stats path) gets 404 saying where they are,
 * and never reaches the cache or the upstream. Unchanged without a flush endpoint.
 */
export function withoutAdminRoutes(handler: (req: IncomingMessage, res: ServerResponse) => void, flushPath: string | undefined): (req: IncomingMessage, res: ServerResponse) => void {
  if (flushPath === undefined) return handler;
  const body = 'Not Found: the admin routes (flush, PURGE, stats) are served on the --admin address (--admin-on-main serves them here)\n';
  return (req, res) => {
    if (adminRouteOf(req, flushPath) === undefined) return handler(req, res);
    req.resume();
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : body);
  };
}

/** True for a listen address only this machine reaches (127.0.0.0/8, ::1, localhost). */
export function isLoopbackAddress(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1') return true;
  return isIP(h) === 4 && h.startsWith('127.');
}

/**
 * The startup warning when flushing is reachable without a token on a listener that is not
 * loopback (`listeners`: those that serve the admin routes, as URLs with their listen host), or
 * undefined. Said once, on stderr.
 */
export function unguardedWarning(token: string | undefined, listeners: ReadonlyArray<{ url: string; host: string }>): string | undefined {
  if (token !== undefined) return undefined;
  const open = listeners.filter((l) => !isLoopbackAddress(l.host)).map((l) => l.url);
  if (open.length === 0) return undefined;
  return `stratacache: warning: flushing (flush endpoint, PURGE, stats, console) is reachable without a token on ${open.join(' and ')}, which is not loopback: any client in flush.allowedClients can flush; set --flush-token (or STRATACACHE_FLUSH_TOKEN)`;
}
