/**
 * One peer as seen from this node: its base URL, a keep-alive agent (peers talk over long-lived
 * connections), its circuit breaker, and one signed lookup at a time bounded by two timeouts:
 * `queryTimeout` until the reply's status and headers, `fetchTimeout` for the entry's bytes.
 * A reply that is not a signed, complete, decodable entry within `maxEntrySize` is an error:
 * counted, never served.
 */
import http from 'node:http';
import https from 'node:https';
import { decodeEntry, type Entry } from '../entry.js';
import { PeerError, PeerTimeoutError } from '../errors.js';
import { REPLY_SIGNATURE_HEADER, SIGNATURE_HEADER, replyMac, sameReplyMac, signRequest } from './auth.js';
import { CircuitBreaker } from './breaker.js';

/** How one lookup on one peer ended. A timeout is an `error` whose error is a {@link PeerTimeoutError}. */
export type FetchOutcome = { kind: 'hit'; entry: Entry } | { kind: 'miss' } | { kind: 'error'; error: PeerError } | { kind: 'aborted' };

/** Options of {@link PeerClient}. */
export interface PeerClientOptions {
  secret: string;
  /** Body transfer bound in ms, after the reply's headers. */
  fetchTimeout: number;
  /** Largest reply body in bytes. */
  maxEntrySize: number;
  /** Sockets kept open to this peer. */
  maxSockets: number;
  failureThreshold: number;
  coolDown: number;
  /** Current time in epoch ms. @default Date.now */
  now?: () => number;
}

/** Per-call context of {@link PeerClient.fetch}. */
export interface FetchContext {
  /** Aborting it cancels the lookup (outcome `aborted`, no breaker verdict). */
  signal: AbortSignal;
  /** Instant (epoch ms) by which the reply's headers must have arrived. */
  deadline: number;
  /** Called when a hit's bytes start to arrive (the lookup then runs under `fetchTimeout`). */
  onTransfer?: () => void;
}

/** One peer: base URL, keep-alive agent, breaker. */
export class PeerClient {
  readonly url: string;
  readonly breaker: CircuitBreaker;
  readonly #agent: http.Agent;
  readonly #request: typeof http.request;
  readonly #options: PeerClientOptions;
  readonly #now: () => number;

  constructor(url: string, options: PeerClientOptions) {
    this.url = url;
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.breaker = new CircuitBreaker({ failureThreshold: options.failureThreshold, coolDown: options.coolDown, now: this.#now });
    const secure = url.startsWith('https:');
    // Free sockets close before Node's default server keepAliveTimeout (5 s), so a reused socket
    // is rarely one the server is closing; the rare race left is retried once (see #attempt).
    const agentOptions = { keepAlive: true, maxSockets: options.maxSockets, maxFreeSockets: options.maxSockets, scheduling: 'lifo' as const, timeout: 4_000 };
    this.#agent = secure ? new https.Agent(agentOptions) : new http.Agent(agentOptions);
    this.#request = (secure ? https.request : http.request) as typeof http.request;
  }

  /** Sends one signed lookup for `target` (from the endpoint path on). Never rejects. */
  fetch(target: string, context: FetchContext): Promise<FetchOutcome> {
    return new Promise((resolve) => this.#attempt(target, context, resolve, true));
  }

  #attempt(target: string, context: FetchContext, done: (outcome: FetchOutcome) => void, mayRetry: boolean): void {
    const { signal } = context;
    if (signal.aborted) return done({ kind: 'aborted' });
    const options = this.#options;
    const signed = signRequest(options.secret, 'GET', target, this.#now());
    let settled = false;
    let responded = false;
    let queryTimer: NodeJS.Timeout | undefined;
    let fetchTimer: NodeJS.Timeout | undefined;
    const cleanup = (): void => {
      settled = true;
      clearTimeout(queryTimer);
      clearTimeout(fetchTimer);
      signal.removeEventListener('abort', onAbort);
    };
    const settle = (outcome: FetchOutcome): void => {
      if (settled) return;
      cleanup();
      if (outcome.kind !== 'hit' && outcome.kind !== 'miss') req.destroy();
      done(outcome);
    };
    // Checked before building the error: 'close' follows every completed reply, and an Error
    // captures a stack trace.
    const fail = (message: string, cause?: unknown): void => {
      if (!settled) settle({ kind: 'error', error: new PeerError(message, { peer: this.url, cause }) });
    };
    const onAbort = (): void => settle({ kind: 'aborted' });

    const req = this.#request(this.url + target, { method: 'GET', agent: this.#agent, headers: signed });
    signal.addEventListener('abort', onAbort, { once: true });
    queryTimer = setTimeout(
      () => settle({ kind: 'error', error: new PeerTimeoutError(`no answer within queryTimeout`, { peer: this.url }) }),
      Math.max(1, context.deadline - this.#now()),
    );
    req.on('error', (error: NodeJS.ErrnoException) => {
      if (settled) return;
      // A kept-alive socket the peer closed just as we reused it: one fresh attempt (Node docs' pattern).
      if (mayRetry && !responded && req.reusedSocket && error.code === 'ECONNRESET') {
        cleanup();
        return this.#attempt(target, context, done, false);
      }
      fail(`request failed: ${error.code ?? error.message}`, error);
    });
    req.on('response', (res) => {
      responded = true;
      clearTimeout(queryTimer);
      res.on('error', () => {}); // reported through 'close' below
      if (res.statusCode === 404) {
        res.resume();
        return settle({ kind: 'miss' });
      }
      if (res.statusCode !== 200) {
        res.resume();
        return fail(`peer answered ${res.statusCode}`);
      }
      const declared = Number(res.headers['content-length']);
      if (res.headers['content-length'] !== undefined && !(declared <= options.maxEntrySize)) {
        return fail(`reply of ${res.headers['content-length']} bytes over peers.maxEntrySize`);
      }
      context.onTransfer?.();
      fetchTimer = setTimeout(
        () => settle({ kind: 'error', error: new PeerTimeoutError('entry not received within fetchTimeout', { peer: this.url }) }),
        options.fetchTimeout,
      );
      const mac = replyMac(options.secret, signed[SIGNATURE_HEADER]!, 200);
      const chunks: Buffer[] = [];
      let bytes = 0;
      res.on('data', (chunk: Buffer) => {
        if (settled) return;
        bytes += chunk.length;
        if (bytes > options.maxEntrySize) return fail('reply over peers.maxEntrySize');
        mac.update(chunk);
        chunks.push(chunk);
      });
      res.on('end', () => {
        if (settled) return;
        if (!res.complete) return fail('reply truncated');
        if (!sameReplyMac(mac.digest(), res.headers[REPLY_SIGNATURE_HEADER])) return fail('reply not signed with the shared secret');
        try {
          settle({ kind: 'hit', entry: decodeEntry(Buffer.concat(chunks, bytes)) });
        } catch (error) {
          fail('reply is not an entry', error);
        }
      });
      res.on('close', () => fail('reply truncated'));
    });
    req.end();
  }

  /** Closes the kept-alive connections. */
  close(): void {
    this.#agent.destroy();
  }
}
