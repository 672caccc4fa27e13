/**
 * The peer endpoint: answers other nodes' lookups from this node's local stores only. It never
 * renders and never asks its own peers (no cascades, no loops). 401 for a missing, wrong or
 * expired signature, 405 for another method, 400 for a malformed lookup, 404 for a miss or a
 * namespace this node does not serve, 200 with the encoded entry (binary, signed) for a hit.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import createDebug from 'debug';
import { encodeEntry, type Entry } from '../entry.js';
import type { MaybePromise } from '../stores/store.js';
import { REPLY_SIGNATURE_HEADER, replyMac, verifyRequest } from './auth.js';
import { isPeerTarget, parseLookupTarget, type LookupQuery } from './protocol.js';

const debug = createDebug('stratacache:peers');

/** Finds an entry in this node's local stores for a peer's lookup (never renders, never asks peers). */
export type LocalLookup = (query: LookupQuery) => MaybePromise<Entry | undefined>;

/** Options of {@link PeerEndpoint}. */
export interface PeerEndpointOptions {
  /** The shared secret. */
  secret: string;
  /** Path prefix (`options.peers.path`). */
  path: string;
  /** Current time in epoch ms. @default Date.now */
  now?: () => number;
}

/** Serves lookups for the namespaces registered on it. */
export class PeerEndpoint {
  readonly path: string;
  readonly #secret: string;
  readonly #now: () => number;
  readonly #lookups = new Map<string, LocalLookup>();

  constructor(options: PeerEndpointOptions) {
    this.path = options.path;
    this.#secret = options.secret;
    this.#now = options.now ?? Date.now;
  }

  /** Serves namespace `ns` (`r` responses, `d` data) with `lookup`. */
  register(ns: string, lookup: LocalLookup): void {
    if (!/^[a-z]$/.test(ns)) throw new TypeError(`expected a namespace of one lower-case letter, got '${ns}'`);
    this.#lookups.set(ns, lookup);
  }

  /** True when a request target is addressed to this endpoint. */
  handles(url: string): boolean {
    return isPeerTarget(this.path, url);
  }

  /** Answers one request. Never throws; resolves when the answer is written. */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    req.resume(); // a lookup has no body; drain anything sent so the connection stays usable
    const url = req.url ?? '';
    const method = req.method ?? '';
    const auth = verifyRequest(this.#secret, { method, target: url, headers: req.headers }, this.#now());
    if (!auth.ok) {
      debug('endpoint: 401 %s', auth.reason);
      return plain(res, 401, 'Unauthorized');
    }
    if (method !== 'GET') {
      res.setHeader('allow', 'GET');
      return plain(res, 405, 'Method Not Allowed');
    }
    const query = parseLookupTarget(this.path, url);
    if (query === undefined) {
      debug('endpoint: 400 malformed lookup');
      return plain(res, 400, 'Bad Request');
    }
    const lookup = this.#lookups.get(query.ns);
    let entry: Entry | undefined;
    try {
      entry = lookup === undefined ? undefined : await lookup(query);
    } catch (error) {
      debug('endpoint: lookup failed %O', error);
      return plain(res, 500, 'Lookup Failed');
    }
    const now = this.#now();
    if (entry === undefined || now >= entry.expiresAt || (query.freshAt !== undefined && entry.staleAt <= query.freshAt)) {
      return plain(res, 404, 'Not Found');
    }
    const body = encodeEntry(entry);
    const signature = replyMac(this.#secret, auth.signature, 200).update(body).digest('base64url');
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'content-length': body.length,
      'cache-control': 'no-store',
      [REPLY_SIGNATURE_HEADER]: signature,
    });
    res.end(body);
  }
}

function plain(res: ServerResponse, status: number, text: string): void {
  if (res.headersSent) return void res.end();
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}
