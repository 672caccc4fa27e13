/**
 * Cluster-wide invalidation (`invalidation.propagate`). Every local invalidation record is sent
 * to every peer as a signed `POST <peers.path>/i?b=<digest>` carrying a batch of records in the
 * order this node applied them. The request signature (the peer protocol's HMAC) covers the
 * target, and the target covers the body's SHA-256, so a body cannot be changed in transit.
 *
 * Sender: one cursor per peer (the id of the last record that peer acknowledged) into the
 * bounded invalidation log; one request in flight per peer, so records arrive in order; a
 * failed call is retried with exponential backoff ({@link RETRY_BASE} doubling up to
 * {@link RETRY_MAX}), except a 405 or 400 (a peer that cannot take the batch), which drops it. A peer that fell further behind than the log holds gets a synthetic soft
 * tree invalidation of `/` first (everything it caches goes stale, nothing is deleted), then
 * the records still held.
 *
 * Receiver: records are applied with origin `'remote'` and never sent on (no loops). Per
 * origin (node URL and a random boot id), records with an id at or below the last one applied
 * are skipped, so a replay of a captured call inside the signature's 30 s window changes nothing.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import createDebug from 'debug';
import { boundedLru } from '../lru.js';
import { PeerError } from '../errors.js';
import type { InvalidationScope } from '../invalidation/epochs.js';
import type { InvalidationLog } from '../invalidation/log.js';
import { isTag, isTarget } from '../invalidation/targets.js';
import { REPLY_SIGNATURE_HEADER, SIGNATURE_HEADER, replyMac, sameReplyMac, signRequest } from './auth.js';
import { BODY_DIGEST_PARAM, bodyDigest } from './endpoint.js';

const debug = createDebug('stratacache:propagate');

/** Namespace of the peer endpoint that receives invalidation records. */
export const INVALIDATION_NAMESPACE = 'i';
/** First retry delay in ms after a failed propagation call; doubles per failure. */
export const RETRY_BASE = 100;
/** Longest retry delay in ms. */
export const RETRY_MAX = 10_000;
/** Most records sent in one call. */
export const MAX_BATCH = 100;
/** Most origins whose last applied id a receiver remembers. */
const MAX_ORIGINS = 10_000;

/** One record on the wire (an {@link InvalidationLog} record of the sending node). */
export interface WireRecord {
  /** Its id in the sender's log (increasing within one batch and across batches of one origin). */
  id: number;
  /** When the sender applied it, epoch ms on the sender's clock (the receiver caps it at its own now). */
  at: number;
  /** Invalidated paths. */
  paths: string[];
  scope: InvalidationScope;
  /** Remove instead of marking stale. */
  hard: boolean;
  /** Invalidated tags. */
  tags: string[];
  /** URIs to refetch (once for the cluster, by each URI's owner). */
  refetch: string[];
  /** Host for refetch URIs the receiver holds no entry for (the flush request's Host), `''` for none. */
  host: string;
}

/** A batch on the wire: the origin (`<node URL>#<boot id>`) and its records, oldest first. */
export interface WireBatch {
  o: string;
  r: WireRecord[];
}

/** Propagation counters (part of `cache.stats()`). */
export interface PropagationCounters {
  /** Records a peer acknowledged (one per record per peer). */
  invalidationsSent: number;
  /** Records received from peers and applied here (replays and repeats not counted). */
  invalidationsReceived: number;
  /** Propagation calls that failed (connection, timeout, status, unsigned reply); each is retried. */
  propagationErrors: number;
  /** Times a peer had fallen behind the log and got (and acknowledged) a soft invalidation of `/` instead. */
  propagationResets: number;
}

/** What the propagator needs from the engine. */
export interface PropagationContext {
  /** The shared secret. */
  secret: string;
  /** Path prefix of the peer endpoint. */
  path: string;
  /** This node's base URL (`peers.self`), `''` when unknown. */
  self: string;
  /** Longest wait for a call's answer, in ms. */
  timeout: number;
  /** The invalidation log the records are read from. */
  log: InvalidationLog;
  /** Base URLs of the peers now. */
  peers(): readonly string[];
  /** Applies one received record (origin `'remote'`). Throws TypeError for a malformed one. */
  apply(record: WireRecord, from: { node: string; origin: string }): void;
  /** A call failed (already counted). */
  onError(error: PeerError): void;
}

interface PeerCursor {
  /** Id of the last local record this peer acknowledged. */
  acked: number;
  sending: boolean;
  failures: number;
  timer: NodeJS.Timeout | undefined;
}

/** Sends local invalidation records to peers and applies the ones peers send. */
export class Propagator {
  readonly counters: PropagationCounters = { invalidationsSent: 0, invalidationsReceived: 0, propagationErrors: 0, propagationResets: 0 };
  /** This process's origin id: the node URL and a boot id (a restarted node's ids start again at 1). */
  readonly origin: string;
  readonly #ctx: PropagationContext;
  readonly #cursors = new Map<string, PeerCursor>();
  readonly #applied = boundedLru<string, number>(MAX_ORIGINS);
  readonly #agent = new http.Agent({ keepAlive: true, maxSockets: 4, timeout: 4_000 });
  readonly #secureAgent = new https.Agent({ keepAlive: true, maxSockets: 4, timeout: 4_000 });
  #closed = false;

  constructor(ctx: PropagationContext) {
    this.#ctx = ctx;
    this.origin = `${ctx.self}#${randomUUID().slice(0, 8)}`;
  }

  /** A local record was appended to the log: ship it (and anything before it not yet acknowledged). */
  push(): void {
    if (this.#closed) return;
    const peers = this.#ctx.peers();
    for (const url of peers) {
      let cursor = this.#cursors.get(url);
      if (cursor === undefined) {
        // A peer first seen now gets records from the one just appended on (it held nothing before).
        cursor = { acked: this.#ctx.log.lastId - 1, sending: false, failures: 0, timer: undefined };
        this.#cursors.set(url, cursor);
      }
      if (!cursor.sending && cursor.timer === undefined) void this.#send(url, cursor);
    }
    for (const [url, cursor] of this.#cursors) {
      if (!peers.includes(url)) {
        clearTimeout(cursor.timer);
        this.#cursors.delete(url);
      }
    }
  }

  /** Local records not yet acknowledged by `url` (for tests and stats). */
  backlog(url: string): number {
    const cursor = this.#cursors.get(url);
    if (cursor === undefined) return 0;
    return this.#ctx.log.since(cursor.acked).filter((r) => r.origin === 'local').length;
  }

  /** The batch for a peer whose last acknowledged id is `acked`, or undefined when it is up to date. */
  #batch(cursor: PeerCursor): { records: WireRecord[]; last: number; reset: boolean } | undefined {
    const log = this.#ctx.log;
    if (cursor.acked >= log.lastId) return undefined;
    const records: WireRecord[] = [];
    let last = cursor.acked;
    const reset = log.oldestId > cursor.acked + 1;
    if (reset) {
      // Records this peer missed fell out of the log: what they invalidated is unknown, so
      // everything goes stale there (soft; hard removals among them degrade to stale).
      debug('peer behind the log (acked %d, oldest %d): soft invalidation of /', cursor.acked, log.oldestId);
      const id = log.oldestId - 1;
      records.push({ id, at: Date.now(), paths: ['/'], scope: 'tree', hard: false, tags: [], refetch: [], host: '' });
      last = id;
    }
    for (const r of log.since(last)) {
      if (records.length >= MAX_BATCH) break;
      last = r.id;
      if (r.origin !== 'local') continue;
      records.push({ id: r.id, at: r.at, paths: [...r.paths], scope: r.scope, hard: r.hard, tags: [...r.tags], refetch: [...r.refetch], host: r.host ?? '' });
    }
    return { records, last, reset };
  }

  async #send(url: string, cursor: PeerCursor): Promise<void> {
    cursor.sending = true;
    try {
      for (;;) {
        if (this.#closed || !this.#cursors.has(url)) return;
        const batch = this.#batch(cursor);
        if (batch === undefined) return;
        if (batch.records.length > 0) {
          const outcome = await this.#call(url, { o: this.origin, r: batch.records });
          if (outcome === 'retry') {
            cursor.failures++;
            const delay = Math.min(RETRY_MAX, RETRY_BASE * 2 ** Math.min(cursor.failures - 1, 20));
            debug('%s: retry in %d ms', url, delay);
            cursor.timer = setTimeout(() => {
              cursor.timer = undefined;
              void this.#send(url, cursor);
            }, delay);
            cursor.timer.unref();
            return;
          }
          cursor.failures = 0;
          if (outcome === 'ok') {
            this.counters.invalidationsSent += batch.records.length;
            if (batch.reset) this.counters.propagationResets++;
          }
        }
        cursor.acked = batch.last;
      }
    } finally {
      cursor.sending = false;
    }
  }

  /**
   * One signed call: `'ok'` when the peer acknowledged the batch with a signed 200; `'drop'` when
   * it answered 405 (a node of an older version without propagation, during a rolling upgrade) or
   * 400 (it cannot parse the batch): sending it again would never succeed, so it is skipped
   * (counted as an error); `'retry'` for anything else.
   */
  #call(url: string, batch: WireBatch): Promise<'ok' | 'retry' | 'drop'> {
    const body = Buffer.from(JSON.stringify(batch));
    const target = `${this.#ctx.path}/${INVALIDATION_NAMESPACE}?${BODY_DIGEST_PARAM}=${bodyDigest(body)}`;
    const signed = signRequest(this.#ctx.secret, 'POST', target);
    const secure = url.startsWith('https:');
    return new Promise((resolve) => {
      let settled = false;
      const fail = (message: string, cause?: unknown, outcome: 'retry' | 'drop' = 'retry'): void => {
        if (settled) return;
        settled = true;
        req.destroy();
        this.counters.propagationErrors++;
        debug('%s: %s (%s)', url, message, outcome);
        this.#ctx.onError(new PeerError(`invalidation propagation: ${message}`, { peer: url, cause }));
        resolve(outcome);
      };
      const req = (secure ? https.request : http.request)(url + target, {
        method: 'POST',
        agent: secure ? this.#secureAgent : this.#agent,
        headers: { ...signed, 'content-type': 'application/json', 'content-length': String(body.length) },
      });
      const timer = setTimeout(() => fail(`no answer within ${this.#ctx.timeout} ms`), this.#ctx.timeout);
      timer.unref();
      req.on('error', (error: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        fail(`request failed: ${error.code ?? error.message}`, error);
      });
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', () => undefined);
        res.on('end', () => {
          clearTimeout(timer);
          if (settled) return;
          if (res.statusCode === 405 || res.statusCode === 400) return fail(`peer answered ${res.statusCode}; batch skipped`, undefined, 'drop');
          if (res.statusCode !== 200) return fail(`peer answered ${res.statusCode}`);
          const reply = Buffer.concat(chunks);
          const mac = replyMac(this.#ctx.secret, signed[SIGNATURE_HEADER]!, 200).update(reply).digest();
          if (!sameReplyMac(mac, res.headers[REPLY_SIGNATURE_HEADER])) return fail('reply not signed with the shared secret');
          settled = true;
          resolve('ok');
        });
      });
      req.end(body);
    });
  }

  /**
   * Handles a received batch (the endpoint checked signature and body digest): 400 when it is
   * malformed (nothing applied), else applies the records newer than the last one applied from
   * that origin, in order, and answers 200 with that last id.
   */
  receive(body: Buffer): { status: number; body: string } {
    const batch = parseBatch(body);
    if (batch === undefined) return { status: 400, body: '{"error":"malformed batch"}' };
    const node = batch.o.slice(0, batch.o.lastIndexOf('#'));
    let last = this.#applied.get(batch.o) ?? 0;
    for (const record of batch.r) {
      if (record.id <= last) continue; // a replay or a retry of what was applied: idempotent
      try {
        this.#ctx.apply(record, { node, origin: batch.o });
      } catch (error) {
        debug('record %s#%d refused: %O', batch.o, record.id, error);
        // Validated by parseBatch; a throw here is a bug in the apply path. Stop so order holds.
        this.#applied.set(batch.o, last);
        return { status: 400, body: JSON.stringify({ error: 'record refused', last }) };
      }
      last = record.id;
      this.counters.invalidationsReceived++;
    }
    this.#applied.set(batch.o, last);
    return { status: 200, body: JSON.stringify({ last }) };
  }

  /** Stops sending (pending retries are dropped) and closes connections. */
  close(): void {
    this.#closed = true;
    for (const cursor of this.#cursors.values()) clearTimeout(cursor.timer);
    this.#agent.destroy();
    this.#secureAgent.destroy();
  }
}

const stringArray = (v: unknown, ok: (s: string) => boolean): v is string[] => Array.isArray(v) && v.length <= 10_000 && v.every((s) => typeof s === 'string' && ok(s));

/** Parses and validates a batch; undefined when anything in it is malformed (ids must increase). */
export function parseBatch(body: Buffer): WireBatch | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
  if (doc === null || typeof doc !== 'object') return undefined;
  const { o, r } = doc as Record<string, unknown>;
  if (typeof o !== 'string' || o.length > 2048 || o.lastIndexOf('#') < 0 || !Array.isArray(r) || r.length > MAX_BATCH) return undefined;
  let previous = 0;
  for (const x of r as unknown[]) {
    if (x === null || typeof x !== 'object') return undefined;
    const rec = x as Record<string, unknown>;
    if (typeof rec.id !== 'number' || !Number.isSafeInteger(rec.id) || rec.id <= previous) return undefined;
    previous = rec.id;
    if (typeof rec.at !== 'number' || !Number.isFinite(rec.at) || rec.at < 0) return undefined;
    if (!stringArray(rec.paths, isTarget) || !stringArray(rec.refetch, isTarget)) return undefined;
    if (!stringArray(rec.tags, isTag)) return undefined;
    if (rec.scope !== 'tree' && rec.scope !== 'resource') return undefined;
    if (typeof rec.hard !== 'boolean' || typeof rec.host !== 'string' || rec.host.length > 1024) return undefined;
  }
  return doc as WireBatch;
}
