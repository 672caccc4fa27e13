/**
 * Nested HTTP requests of the data cache over node:http/https: one GET, its whole body, a
 * timeout covering headers and body, and a p-limit queue per origin.
 */
import http, { type IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import createDebug from 'debug';
import pLimit, { type LimitFunction } from 'p-limit';
import { DataFetchError, DataTimeoutError } from '../errors.js';

const debug = createDebug('stratacache:data');

/** A response as received: status, raw headers, whole body. */
export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/**
 * GETs an absolute http(s) URL. Rejects with DataTimeoutError after `timeout` ms, with
 * DataFetchError when the connection fails; an HTTP error status is a response, not a rejection.
 */
export function httpGet(url: URL, headers: Record<string, string>, timeout: number): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const client = url.protocol === 'https:' ? https : http;
    const req = client.request(url, { method: 'GET', headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) });
      });
      res.on('error', (error) => fail(error));
    });
    const fail = (error: unknown): void => {
      clearTimeout(timer);
      reject(error instanceof DataTimeoutError ? error : new DataFetchError(`GET ${url.href} failed`, { cause: error }));
    };
    const timer = setTimeout(() => {
      debug('timeout after %dms: %s', timeout, url.href);
      req.destroy(new DataTimeoutError(`GET ${url.href} took longer than ${timeout}ms`));
    }, timeout);
    req.on('error', fail);
    req.end();
  });
}

/** Rejects with DataTimeoutError when `promise` has not settled after `timeout` ms. */
export function withTimeout<T>(promise: Promise<T>, timeout: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DataTimeoutError(`${what} took longer than ${timeout}ms`)), timeout);
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

/** One p-limit queue per origin, dropped when idle so the map stays as small as the origins in use. */
export class OriginLimits {
  readonly #limits = new Map<string, LimitFunction>();
  readonly #concurrency: number;

  constructor(concurrency: number) {
    this.#concurrency = concurrency;
  }

  /** Runs `task` when fewer than the limit of tasks for `origin` are running. */
  run<T>(origin: string, task: () => Promise<T>): Promise<T> {
    let limit = this.#limits.get(origin);
    if (limit === undefined) this.#limits.set(origin, (limit = pLimit(this.#concurrency)));
    const queue = limit;
    return queue(task).finally(() => {
      if (queue.activeCount === 0 && queue.pendingCount === 0 && this.#limits.get(origin) === queue) this.#limits.delete(origin);
    });
  }
}
