/**
 * The HTTP flush endpoint. Speaks the AEM dispatcher flush-agent protocol (`CQ-Action`,
 * `CQ-Handle`, `CQ-Path`, `CQ-Action-Scope`, a body listing URIs to refetch one per line) and a
 * JSON form (`{ paths, tags, refetch }`). Behind the admin guard (`admin-guard.ts`); a refused
 * request changes nothing. Answered before the wrapped handler runs.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import createDebug from 'debug';
import { adminGuard, type FlushRefusal } from './admin-guard.js';
import type { ResolvedFlushOptions } from './options.js';
import type { InvalidationScope } from './epochs.js';
import { isTag, isTarget } from './targets.js';

const debug = createDebug('stratacache:flush');

/** A parsed, valid flush request. */
export interface FlushRequest {
  /** `'test'` changes nothing (the agent's connection test). */
  action: 'activate' | 'deactivate' | 'delete' | 'test' | 'json';
  paths: string[];
  tags: string[];
  refetch: string[];
  scope: InvalidationScope;
  /** Deactivate/Delete: remove at once instead of marking stale. */
  hard: boolean;
}

export type { FlushRefusal } from './admin-guard.js';

/** What the endpoint does with a valid request: apply it and report what was queued. */
export type FlushApply = (request: FlushRequest, context: { host: string }) => { id: number; refetch: number };

const ACTIONS: Record<string, FlushRequest['action']> = {
  activate: 'activate',
  deactivate: 'deactivate',
  delete: 'delete',
  test: 'test',
};


function headerValue(headers: IncomingMessage['headers'], name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * Parses a flush request from its method, headers and body. Pure; every failure is a 400 (or 405
 * for a method the protocol does not use) with a reason.
 */
export function parseFlush(
  method: string,
  headers: IncomingMessage['headers'],
  body: { text: string; maxLines: number },
): FlushRequest | FlushRefusal {
  if (method !== 'GET' && method !== 'POST') return { status: 405, reason: `method ${method}` };
  const cqAction = headerValue(headers, 'cq-action');
  const type = (headerValue(headers, 'content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  if (cqAction === undefined) {
    if (type === 'application/json') return parseJson(body.text, body.maxLines);
    return { status: 400, reason: 'missing CQ-Action' };
  }
  const action = ACTIONS[cqAction.trim().toLowerCase()];
  if (action === undefined) return { status: 400, reason: `unknown CQ-Action ${JSON.stringify(cqAction)}` };
  const scopeHeader = headerValue(headers, 'cq-action-scope');
  if (scopeHeader !== undefined && scopeHeader.trim().toLowerCase() !== 'resourceonly') {
    return { status: 400, reason: `unknown CQ-Action-Scope ${JSON.stringify(scopeHeader)}` };
  }
  const scope: InvalidationScope = scopeHeader === undefined ? 'tree' : 'resource';
  if (action === 'test') return { action, paths: [], tags: [], refetch: [], scope, hard: false };
  // The dispatcher acts on CQ-Handle; CQ-Path carries the same path and serves as a fallback.
  const handle = (headerValue(headers, 'cq-handle') ?? headerValue(headers, 'cq-path'))?.trim();
  if (handle === undefined || handle === '') return { status: 400, reason: 'missing CQ-Handle' };
  if (!isTarget(handle) || !handle.startsWith('/')) return { status: 400, reason: 'CQ-Handle is not a path' };
  const refetch: string[] = [];
  if (body.text !== '') {
    if (type !== '' && type !== 'text/plain' && type !== 'application/octet-stream') {
      return { status: 400, reason: `unexpected content type ${type}` };
    }
    for (const raw of body.text.split('\n')) {
      const line = raw.trim();
      if (line === '') continue;
      if (!isTarget(line)) return { status: 400, reason: 'a refetch line is not a URI' };
      if (refetch.length >= body.maxLines) return { status: 400, reason: `more than ${body.maxLines} refetch URIs` };
      refetch.push(line);
    }
  }
  const hard = action === 'deactivate' || action === 'delete';
  return { action, paths: [handle], tags: [], refetch, scope, hard };
}

function stringList(value: unknown, name: string): string[] | string {
  if (value === undefined) return [];
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string' && v !== '')) return `${name} must be an array of non-empty strings`;
  return value as string[];
}

function parseJson(text: string, maxItems: number): FlushRequest | FlushRefusal {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return { status: 400, reason: 'body is not JSON' };
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) return { status: 400, reason: 'body is not a JSON object' };
  const o = doc as Record<string, unknown>;
  const paths = stringList(o.paths, 'paths');
  const tags = stringList(o.tags, 'tags');
  const refetch = stringList(o.refetch, 'refetch');
  for (const l of [paths, tags, refetch]) if (typeof l === 'string') return { status: 400, reason: l };
  const p = paths as string[];
  const t = tags as string[];
  const r = refetch as string[];
  if (p.length + t.length + r.length === 0) return { status: 400, reason: 'nothing to do: give paths, tags or refetch' };
  if (p.length + t.length + r.length > maxItems) return { status: 400, reason: `more than ${maxItems} items` };
  for (const path of [...p, ...r]) if (!isTarget(path)) return { status: 400, reason: `not a path: ${JSON.stringify(String(path).slice(0, 100))}` };
  for (const tag of t) if (!isTag(tag)) return { status: 400, reason: 'a tag contains white space' };
  if (o.scope !== undefined && o.scope !== 'resource' && o.scope !== 'tree') return { status: 400, reason: "scope must be 'resource' or 'tree'" };
  if (o.hard !== undefined && typeof o.hard !== 'boolean') return { status: 400, reason: 'hard must be a boolean' };
  return { action: 'json', paths: p, tags: t, refetch: r, scope: (o.scope as InvalidationScope | undefined) ?? 'tree', hard: o.hard === true };
}

/** True when the request target `url` is `path` (the flush endpoint's), with or without a query. */
export function isFlushTarget(url: string | undefined, path: string): boolean {
  return url !== undefined && url.startsWith(path) && (url.length === path.length || url.charCodeAt(path.length) === 63 /* ? */);
}

/** The flush endpoint of one cache. */
export class FlushEndpoint {
  readonly #options: ResolvedFlushOptions;
  readonly #guard: (req: IncomingMessage) => FlushRefusal | undefined;
  readonly #apply: FlushApply;
  readonly #count: (outcome: 'ok' | 'refused') => void;

  constructor(options: ResolvedFlushOptions, context: { apply: FlushApply; count(outcome: 'ok' | 'refused'): void }) {
    this.#options = options;
    this.#guard = adminGuard(options);
    this.#apply = context.apply;
    this.#count = context.count;
  }

  /** True when `url` is the endpoint's path (with or without a query). */
  matches(url: string | undefined): boolean {
    return isFlushTarget(url, this.#options.path);
  }

  /** Answers a flush request. Resolves to true (the handler never runs for it). */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const refusal = this.guard(req);
    if (refusal !== undefined) {
      this.#count('refused');
      this.#reply(req, res, refusal.status, refusal.reason);
      return true;
    }
    const body = await this.#readBody(req);
    if (typeof body !== 'string') {
      this.#count('refused');
      this.#reply(req, res, body.status, body.reason);
      return true;
    }
    const parsed = parseFlush(req.method ?? '', req.headers, { text: body, maxLines: this.#options.maxLines });
    if ('status' in parsed) {
      this.#count('refused');
      debug('refused: %s', parsed.reason);
      this.#reply(req, res, parsed.status, parsed.reason);
      return true;
    }
    this.#count('ok');
    if (parsed.action === 'test') {
      this.#reply(req, res, 200, 'OK');
      return true;
    }
    const done = this.#apply(parsed, { host: req.headers.host ?? '' });
    debug('%s %s: refetch %d', parsed.action, parsed.paths.join(' '), done.refetch);
    if (parsed.action === 'json') {
      const json = JSON.stringify({ ok: true, id: done.id, refetch: done.refetch });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(json)), 'cache-control': 'no-store' });
      res.end(json);
    } else this.#reply(req, res, 200, 'OK');
    return true;
  }

  /**
   * The guard of every admin route (this endpoint, PURGE, the stats endpoint, the console): see
   * `admin-guard.ts` for its rules (admin Host, same origin, allowed client, token through a
   * proxy, token when set). Undefined when allowed, else the 403 refusal.
   */
  guard(req: IncomingMessage): FlushRefusal | undefined {
    return this.#guard(req);
  }

  #readBody(req: IncomingMessage): Promise<string | FlushRefusal> {
    const max = this.#options.maxBodyBytes;
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > max) return Promise.resolve({ status: 413, reason: `body over ${max} bytes` });
    // A body parser in front of the cache (express.json(), express.text()) already read the
    // stream: take what it parsed instead of waiting for an 'end' that has passed.
    if (req.readableEnded) {
      const parsed = (req as { body?: unknown }).body;
      const text =
        typeof parsed === 'string'
          ? parsed
          : Buffer.isBuffer(parsed)
            ? parsed.toString('utf8')
            : parsed !== null && typeof parsed === 'object' && Object.keys(parsed).length > 0
              ? JSON.stringify(parsed)
              : '';
      return Promise.resolve(Buffer.byteLength(text) > max ? { status: 413, reason: `body over ${max} bytes` } : text);
    }
    return new Promise((resolve) => {
      const chunks: Buffer[] = [];
      let bytes = 0;
      const onData = (chunk: Buffer): void => {
        bytes += chunk.length;
        if (bytes > max) {
          req.removeListener('data', onData);
          req.removeListener('end', onEnd);
          req.resume();
          resolve({ status: 413, reason: `body over ${max} bytes` });
          return;
        }
        chunks.push(chunk);
      };
      const onEnd = (): void => resolve(Buffer.concat(chunks, bytes).toString('utf8'));
      req.on('data', onData);
      req.once('end', onEnd);
      req.once('error', () => resolve({ status: 400, reason: 'request body failed' }));
    });
  }

  /** Answers as the dispatcher does: a short HTML body. */
  #reply(req: IncomingMessage, res: ServerResponse, status: number, message: string): void {
    const title = TITLES[status] ?? 'Bad Request';
    const text = status === 200 ? '<H1>OK</H1>' : `<H1>${title}</H1>\n${escapeHtml(message)}`;
    const headers: Record<string, string> = {
      'content-type': 'text/html; charset=utf-8',
      'content-length': String(Buffer.byteLength(text)),
      'cache-control': 'no-store',
    };
    if (status === 405) headers.allow = 'GET, POST';
    // An unread body would be parsed as the next request on this connection: close it instead.
    if (!req.complete) headers.connection = 'close';
    res.writeHead(status, headers);
    res.end(req.method === 'HEAD' ? undefined : text);
  }
}

const TITLES: Record<number, string> = { 400: 'Bad Request', 403: 'Forbidden', 405: 'Method Not Allowed', 413: 'Payload Too Large' };

function escapeHtml(s: string): string {
  return s.replace(/[&<>"]/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : '&quot;'));
}
