/**
 * Purges fanned out to the CDN: tags queue (deduplicated, at most `maxPending`; past it the
 * oldest are dropped and counted), are sent in batches of the provider's size through its purge
 * API (Fastly purge by surrogate key, soft; Cloudflare `purge_cache` by tags; Akamai Fast Purge
 * by tag, EdgeGrid-signed), one request at a time, retried with backoff (250 ms doubling up to
 * 30 s) on a connection error, a timeout, 429 or 5xx, up to `maxAttempts`; another refusal
 * (400, 401, 403...) drops the batch at once. A purge failure never fails a response: it is
 * counted and reported (`error`, `CdnError`).
 */
import http from 'node:http';
import https from 'node:https';
import createDebug from 'debug';
import { CdnError } from '../errors.js';
import { edgeGridAuthorization } from './edgegrid.js';
import type { ResolvedCdnOptions } from './options.js';
import { TAG_LIMITS } from './tags.js';

const debug = createDebug('stratacache:cdn');

/** First retry delay in ms; doubles per failure up to {@link MAX_BACKOFF}. */
export const FIRST_BACKOFF = 250;
export const MAX_BACKOFF = 30_000;

/** What `cache.stats()` reports of the CDN fan-out. */
export interface CdnCounters {
  /** Purge requests the CDN accepted. */
  cdnPurges: number;
  /** Tags those requests named. */
  cdnPurgedTags: number;
  /** Purge requests that failed (each retryable one retried). */
  cdnPurgeErrors: number;
  /** Tags given up on: queue full, refused, or still failing after `maxAttempts`. */
  cdnPurgesDropped: number;
}

/** One purge request as sent. */
export interface PurgeRequest {
  method: 'POST';
  url: URL;
  headers: Record<string, string>;
  body: string;
}

/** The provider's purge request for `tags`. */
export function purgeRequest(o: ResolvedCdnOptions, tags: readonly string[]): PurgeRequest {
  const base = o.apiBase ?? '';
  const json = { 'content-type': 'application/json', accept: 'application/json' };
  if (o.provider === 'fastly') {
    // Purge by surrogate key, batched (up to 256 keys); the soft header marks content stale instead of evicting it.
    const headers: Record<string, string> = { ...json, 'fastly-key': o.token };
    if (o.soft) headers['fastly-soft-purge'] = '1';
    return { method: 'POST', url: new URL(`${base}/service/${encodeURIComponent(o.serviceId)}/purge`), headers, body: JSON.stringify({ surrogate_keys: tags }) };
  }
  if (o.provider === 'cloudflare') {
    return { method: 'POST', url: new URL(`${base}/zones/${encodeURIComponent(o.zoneId)}/purge_cache`), headers: { ...json, authorization: `Bearer ${o.token}` }, body: JSON.stringify({ tags }) };
  }
  // Akamai Fast Purge v3: invalidate (soft) or delete by cache tag, on the chosen network.
  const url = new URL(`${base}/ccu/v3/${o.soft ? 'invalidate' : 'delete'}/tag/${o.network}`);
  const body = JSON.stringify({ objects: tags });
  return { method: 'POST', url, headers: { ...json, authorization: edgeGridAuthorization(o, { method: 'POST', url, body }) }, body };
}

/** Sends one request; resolves with the status (rejects on a connection error or after `timeout`). */
function send(request: PurgeRequest, timeout: number): Promise<number> {
  const transport = request.url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = transport.request(request.url, { method: request.method, headers: { ...request.headers, 'content-length': String(Buffer.byteLength(request.body)) } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    });
    req.setTimeout(timeout, () => req.destroy(new Error(`no answer within ${timeout} ms`)));
    req.on('error', reject);
    req.end(request.body);
  });
}

/** Statuses worth retrying: rate limited, or the API failing. */
const retryable = (status: number): boolean => status === 429 || status >= 500;

/** The purge queue of one cache. */
export class CdnPurger {
  readonly counters: CdnCounters = { cdnPurges: 0, cdnPurgedTags: 0, cdnPurgeErrors: 0, cdnPurgesDropped: 0 };
  readonly #options: ResolvedCdnOptions;
  readonly #fail: (error: CdnError) => void;
  /** Waiting tags, oldest first (a Set keeps insertion order and drops repeats). */
  readonly #pending = new Set<string>();
  #busy = false;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  /** Settles when the queue is empty and nothing is in flight (tests, close). */
  #idle: Array<() => void> = [];

  constructor(options: ResolvedCdnOptions, fail: (error: CdnError) => void) {
    this.#options = options;
    this.#fail = fail;
  }

  /** Queues `tags` for a purge (sent at once when nothing is in flight). */
  purge(tags: readonly string[]): void {
    if (this.#closed || tags.length === 0) return;
    for (const t of tags) {
      this.#pending.delete(t);
      this.#pending.add(t);
    }
    while (this.#pending.size > this.#options.maxPending) {
      this.#pending.delete(this.#pending.values().next().value!);
      this.counters.cdnPurgesDropped++;
    }
    if (!this.#busy) {
      this.#busy = true;
      setImmediate(() => void this.#drain());
    }
  }

  /** Resolves when every queued tag was sent or dropped. */
  idle(): Promise<void> {
    if (!this.#busy) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** Stops sending; what is still queued is dropped (counted). */
  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.counters.cdnPurgesDropped += this.#pending.size;
    this.#pending.clear();
    this.#settle();
  }

  #settle(): void {
    this.#busy = false;
    for (const resolve of this.#idle.splice(0)) resolve();
  }

  async #drain(): Promise<void> {
    const limit = TAG_LIMITS[this.#options.provider].batch;
    while (!this.#closed && this.#pending.size > 0) {
      const batch: string[] = [];
      for (const t of this.#pending) {
        if (batch.length >= limit) break;
        batch.push(t);
      }
      for (const t of batch) this.#pending.delete(t);
      await this.#sendBatch(batch);
    }
    this.#settle();
  }

  /** Sends one batch with its retries; resolves when it was accepted or given up. */
  async #sendBatch(batch: string[]): Promise<void> {
    const o = this.#options;
    for (let attempt = 1; !this.#closed; attempt++) {
      let status = 0;
      let cause: unknown;
      try {
        status = await send(purgeRequest(o, batch), o.timeout);
      } catch (error) {
        cause = error;
      }
      if (status >= 200 && status < 300) {
        this.counters.cdnPurges++;
        this.counters.cdnPurgedTags += batch.length;
        debug('purged %d tags (%s)', batch.length, o.provider);
        return;
      }
      this.counters.cdnPurgeErrors++;
      const again = (status === 0 || retryable(status)) && attempt < o.maxAttempts;
      this.#fail(new CdnError(`${o.provider} purge of ${batch.length} tags ${status === 0 ? 'failed' : `answered ${status}`}${again ? ', retrying' : ', dropped'}`, { cause }));
      if (!again) {
        this.counters.cdnPurgesDropped += batch.length;
        return;
      }
      const delay = Math.min(MAX_BACKOFF, FIRST_BACKOFF * 2 ** (attempt - 1));
      await new Promise<void>((resolve) => {
        this.#timer = setTimeout(resolve, delay);
        this.#timer.unref();
      });
    }
    this.counters.cdnPurgesDropped += batch.length;
  }
}
