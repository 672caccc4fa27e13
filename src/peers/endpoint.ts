/**
 * The peer endpoint: answers other nodes' lookups with what the namespace's lookup finds: the
 * local stores, or for an owner-fetch a render of the page (engine/owner-fetch.ts). It never
 * asks its own peers (no cascades, no loops). 401 for a missing, wrong or
 * expired signature, 405 for another method, 400 for a malformed lookup, 404 for a miss or a
 * namespace this node does not serve, 200 with the encoded entry (binary, signed) for a hit.
 * A signed POST to a namespace with a receiver (`i`: invalidation records) carries the SHA-256
 * of its body in the signed target (`b=`): a body that does not match is a 401, one over
 * {@link MAX_POST_BYTES} a 413; the receiver's answer is signed like a lookup's reply.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import createDebug from 'debug';
import { encodeEntry, type Entry } from '../entry.js';
import type { MaybePromise } from '../stores/store.js';
import { REPLY_SIGNATURE_HEADER, replyMac, verifyRequest } from './auth.js';
import { isPeerTarget, parseLookupTarget, type LookupQuery } from './protocol.js';

const debug = createDebug('stratacache:peers');

/** Finds an entry for a peer's lookup: in this node's stores, or rendered for an owner-fetch (never by asking peers). */
export type LocalLookup = (query: LookupQuery) => MaybePromise<Entry | undefined>;

/**
 * Handles an authenticated POST to a namespace (`i`: invalidation records). Gets the body
 * (already checked against the digest the signature covers) and answers a status and a text
 * body; the reply is signed like a lookup's.
 */
export type PeerReceiver = (body: Buffer) => MaybePromise<{ status: number; body: string }>;

/** Largest POST body accepted by the endpoint, in bytes (a batch of invalidation records). */
export const MAX_POST_BYTES = 1024 * 1024;

/** Query parameter of a POST target: base64url SHA-256 of the body, so the signature covers the body. */
export const BODY_DIGEST_PARAM = 'b';

/** The digest a POST target carries for `body` (see {@link BODY_DIGEST_PARAM}). */
export function bodyDigest(body: Buffer | string): string {
  return createHash('sha256').update(body).digest('base64url');
}

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
  readonly #receivers = new Map<string, PeerReceiver>();

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

  /**
   * Accepts signed POSTs to namespace `ns` (`i`: invalidation records) with `receiver`. The
   * target must carry `b=<base64url SHA-256 of the body>`; a body that does not match is refused 401.
   */
  receive(ns: string, receiver: PeerReceiver): void {
    if (!/^[a-z]$/.test(ns)) throw new TypeError(`expected a namespace of one lower-case letter, got '${ns}'`);
    this.#receivers.set(ns, receiver);
  }

  /** True when a request target is addressed to this endpoint. */
  handles(url: string): boolean {
    return isPeerTarget(this.path, url);
  }

  /** Answers one request. Never throws; resolves when the answer is written. */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = req.url ?? '';
    const method = req.method ?? '';
    if (method !== 'POST') req.resume(); // a lookup has no body; drain anything sent so the connection stays usable
    const auth = verifyRequest(this.#secret, { method, target: url, headers: req.headers }, this.#now());
    if (!auth.ok) {
      debug('endpoint: 401 %s', auth.reason);
      if (method === 'POST') req.resume();
      return plain(res, 401, 'Unauthorized');
    }
    if (method === 'POST') return this.#post(req, res, url, auth.signature);
    if (method !== 'GET') {
      res.setHeader('allow', 'GET, POST');
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

  /** A signed POST: the body must match the digest in the (signed) target; the reply is signed. */
  async #post(req: IncomingMessage, res: ServerResponse, url: string, signature: string): Promise<void> {
    const rest = url.slice(this.path.length);
    const q = rest.indexOf('?');
    const ns = q === -1 ? '' : rest.slice(1, q);
    const receiver = rest.charCodeAt(0) === 47 ? this.#receivers.get(ns) : undefined;
    if (receiver === undefined) {
      req.resume();
      res.setHeader('allow', 'GET');
      return plain(res, 405, 'Method Not Allowed');
    }
    const declared = new URLSearchParams(rest.slice(q + 1)).get(BODY_DIGEST_PARAM) ?? '';
    const body = await readBody(req, MAX_POST_BYTES);
    if (body === undefined) return plain(res, 413, 'Payload Too Large');
    const expected = Buffer.from(bodyDigest(body), 'base64url');
    const given = Buffer.from(declared, 'base64url');
    // The signature covers the target, the target covers the body's digest: a changed body is forged.
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      debug('endpoint: 401 body does not match its signed digest');
      return plain(res, 401, 'Unauthorized');
    }
    let answer: { status: number; body: string };
    try {
      answer = await receiver(body);
    } catch (error) {
      debug('endpoint: receiver failed %O', error);
      return plain(res, 500, 'Receive Failed');
    }
    const text = Buffer.from(answer.body);
    const mac = replyMac(this.#secret, signature, answer.status).update(text).digest('base64url');
    res.writeHead(answer.status, {
      'content-type': 'application/json',
      'content-length': text.length,
      'cache-control': 'no-store',
      [REPLY_SIGNATURE_HEADER]: mac,
    });
    res.end(text);
  }
}

/** Reads a request body up to `max` bytes; undefined when it is longer or fails. */
function readBody(req: IncomingMessage, max: number): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    req.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes <= max) chunks.push(chunk);
    });
    req.once('end', () => resolve(bytes <= max ? Buffer.concat(chunks, bytes) : undefined));
    req.once('error', () => resolve(undefined));
  });
}

function plain(res: ServerResponse, status: number, text: string): void {
  if (res.headersSent) return void res.end();
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}
