/**
 * The small HTTP client the operator commands (flush, prime, stats) use to talk to a node.
 */
import http from 'node:http';
import https from 'node:https';
import { UsageError } from './units.js';

/** A node's answer. */
export interface NodeReply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** Parses `--url`, refusing anything but an http(s) base URL. */
export function nodeUrl(value: unknown, field = '--url'): URL {
  if (typeof value !== 'string' || value === '') throw new UsageError(`${field} is required: the node's base URL, e.g. http://127.0.0.1:3000`);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UsageError(`expected ${field} to be an http(s) URL, got '${value}'`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`expected ${field} to be an http(s) URL, got '${value}'`);
  return url;
}

/** Sends one request and reads the whole answer; rejects on a connection error or after `timeout` ms. */
export function send(
  url: URL,
  options: { method?: string; headers?: Record<string, string>; body?: string; timeout?: number; agent?: http.Agent; discardBody?: boolean } = {},
): Promise<NodeReply> {
  const transport = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = transport.request(url, { method: options.method ?? 'GET', headers: options.headers, agent: options.agent }, (res) => {
      const chunks: Buffer[] = [];
      let bytes = 0;
      res.on('data', (c: Buffer) => {
        bytes += c.length;
        if (options.discardBody !== true) chunks.push(c);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: options.discardBody === true ? Buffer.alloc(bytes) : Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.setTimeout(options.timeout ?? 30_000, () => req.destroy(new Error(`no answer within ${options.timeout ?? 30_000} ms`)));
    req.on('error', reject);
    req.end(options.body);
  });
}

/** `Authorization: Bearer` from `--token` or `STRATACACHE_FLUSH_TOKEN`. */
export function authHeader(token: string | undefined, env: NodeJS.ProcessEnv): Record<string, string> {
  const t = token ?? env.STRATACACHE_FLUSH_TOKEN;
  return t === undefined || t === '' ? {} : { authorization: `Bearer ${t}` };
}

/** A connection failure as one line: "cannot reach http://...: connect ECONNREFUSED". */
export function unreachable(url: URL, error: unknown): UsageError {
  return new UsageError(`cannot reach ${url.origin}: ${(error as Error).message}`);
}

/** Bytes for people: 1.2 MB. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MB`;
  return `${(n / 1024 ** 3).toFixed(2)} GB`;
}
