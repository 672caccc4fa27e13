/**
 * The operator console: a small page (plain HTML, CSS and JS shipped in `assets/`, no build step,
 * nothing loaded from elsewhere) with live charts, tiers, peers, recent invalidations and a flush
 * form, plus the JSON it polls. Mounted anywhere (`http.createServer(cache.consoleHandler())`,
 * `app.use('/console', cache.consoleHandler())`): every URL it uses is relative to its page.
 * Everything is behind the admin guard the flush endpoint uses (admin Host, same origin, allowed
 * clients, token; `invalidation/admin-guard.ts`), and its form posts to the flush endpoint itself.
 */
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FlushEndpoint } from '../invalidation/flush-endpoint.js';
import type { ObservedState } from './metrics.js';
import type { RecentEvent, StatsSample } from './recent.js';

/** What the console's `stats.json` returns. */
export interface ConsoleState extends ObservedState {
  /** Epoch ms on the server. */
  at: number;
  /** `cacheName` (the name in Cache-Status). */
  name: string;
  /** This node's own URL in the cluster (`peers.self`), or `''`. */
  self: string;
  /** Counter samples over the last minutes, oldest first (the last one is now). */
  samples: StatsSample[];
  /** Recent invalidations and refetches, oldest first. */
  events: RecentEvent[];
  /** Path of the flush endpoint on the app's port. */
  flushPath: string;
}

/** What the console needs from the cache. */
export interface ConsoleSource {
  flush: FlushEndpoint;
  state(): ConsoleState;
}

/** A console handler; called with a third argument (Connect `next`), it passes on what it does not serve. */
export type ConsoleHandler = (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void) => void;

interface Asset {
  type: string;
  body: Buffer;
}

const ASSETS_DIR = new URL('./assets/', import.meta.url);

function loadAssets(): Map<string, Asset> {
  const files: Array<[string, string, string]> = [
    ['', 'index.html', 'text/html; charset=utf-8'],
    ['console.js', 'console.js', 'text/javascript; charset=utf-8'],
    ['console.css', 'console.css', 'text/css; charset=utf-8'],
  ];
  return new Map(files.map(([route, file, type]) => [route, { type, body: readFileSync(new URL(file, ASSETS_DIR)) }]));
}

/** Headers on every console response: nothing cached, nothing framed, nothing loaded from elsewhere. */
const SECURITY_HEADERS = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'",
};

/** Builds the console handler. Reads the page's files once, here. */
export function consoleHandler(source: ConsoleSource): ConsoleHandler {
  const assets = loadAssets();
  return (req, res, next) => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    const route = path.slice(path.lastIndexOf('/') + 1);
    const known = assets.has(route) || route === 'stats.json' || route === 'flush';
    if (!known) {
      if (next !== undefined) return next();
      req.resume();
      return send(res, 404, 'text/plain; charset=utf-8', 'Not Found');
    }
    const refusal = source.flush.guard(req);
    if (refusal !== undefined) {
      req.resume();
      if (refusal.challenge === true) {
        res.setHeader('www-authenticate', 'Basic realm="stratacache console", charset="UTF-8"');
        return send(res, 401, 'text/plain; charset=utf-8', 'Unauthorized: the flush token is the password');
      }
      return send(res, refusal.status, 'text/plain; charset=utf-8', refusal.reason);
    }
    if (route === 'flush') {
      // The guard refused a page elsewhere (its Origin is not this Host's): post to the endpoint.
      void source.flush.handle(req, res);
      return;
    }
    req.resume();
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      return send(res, 405, 'text/plain; charset=utf-8', 'Method Not Allowed');
    }
    if (route === '') {
      // The page's URLs are relative: it must be loaded from a URL ending in '/'.
      const mounted = (req as { originalUrl?: string }).originalUrl ?? url;
      const mq = mounted.indexOf('?');
      const mountedPath = mq === -1 ? mounted : mounted.slice(0, mq);
      if (!mountedPath.endsWith('/')) {
        res.setHeader('location', `${mountedPath}/${mq === -1 ? '' : mounted.slice(mq)}`);
        return send(res, 308, 'text/plain; charset=utf-8', 'Moved');
      }
    }
    if (route === 'stats.json') return send(res, 200, 'application/json; charset=utf-8', JSON.stringify(source.state()), req.method === 'HEAD');
    const asset = assets.get(route)!;
    send(res, 200, asset.type, asset.body, req.method === 'HEAD');
  };
}

function send(res: ServerResponse, status: number, type: string, body: string | Buffer, head = false): void {
  res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': type, 'content-length': Buffer.byteLength(body) });
  res.end(head ? undefined : body);
}
