/**
 * Unsafe methods: a successful request whose method is not safe (RFC 9110 §9.2.1: anything but
 * GET, HEAD, OPTIONS, TRACE), whatever its name, invalidates its own URL and the URLs in its
 * Location and Content-Location headers, when same-origin (RFC 9111 §4.4).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import createDebug from 'debug';
import { primaryKey } from '../key.js';
import type { ResolvedOptions } from '../options/types.js';

const debug = createDebug('stratacache:engine');

/** The safe methods that reach here (GET and HEAD are looked up instead). */
const SAFE: ReadonlySet<string> = new Set(['OPTIONS', 'TRACE']);

/** Once `res` finished with a success, removes what an unsafe request changed (via `remove`). */
export function invalidateOnSuccess(req: IncomingMessage, res: ServerResponse, at: { options: ResolvedOptions; remove: (primary: string) => void }): void {
  if (SAFE.has(req.method ?? '')) return;
  res.once('finish', () => {
    if (res.statusCode >= 400) return;
    const targets = [req.url ?? ''];
    for (const h of ['location', 'content-location'] as const) {
      const v = res.getHeader(h);
      if (typeof v === 'string') targets.push(v);
    }
    for (const target of targets) {
      const primary = primaryOf(req, target, at.options);
      if (primary === undefined) continue;
      debug('invalidate after %s: %s', req.method, primary);
      at.remove(primary);
    }
  });
}

/** The primary key of `target` (a path or a same-origin absolute URL) on `req`'s host. */
function primaryOf(req: IncomingMessage, target: string, options: ResolvedOptions): string | undefined {
  let path = target;
  if (/^https?:\/\//i.test(target)) {
    try {
      const u = new URL(target);
      // Only same-origin URIs may be invalidated (RFC 9111 §4.4).
      if (u.host.toLowerCase() !== (req.headers.host ?? '').toLowerCase()) return undefined;
      path = u.pathname + u.search;
    } catch {
      return undefined;
    }
  }
  if (!path.startsWith('/')) return undefined;
  try {
    return primaryKey(req, options, path);
  } catch {
    return undefined;
  }
}
