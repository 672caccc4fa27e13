/**
 * Error classes with stable codes. Every failure the cache reports through its `error` event or
 * `onError` hook is one of these, with the original error as `cause`.
 */

/** Stable error codes. */
export type CacheErrorCode =
  | 'ERR_STORE'
  | 'ERR_HANDLER'
  | 'ERR_ENTRY_DECODE'
  | 'ERR_REGENERATE'
  | 'ERR_PEER'
  | 'ERR_PEER_TIMEOUT'
  | 'ERR_INTERNAL'
  | 'ERR_DATA_SERIALIZE'
  | 'ERR_DATA_LOAD'
  | 'ERR_DATA_FETCH'
  | 'ERR_DATA_TIMEOUT'
  | 'ERR_DATA_LOOP'
  | 'ERR_DATA_INCLUDE'
  | 'ERR_CDN';

/** Base class of every error stratacache raises at run time. */
export class CacheError extends Error {
  /** A stable machine-readable code. */
  readonly code: CacheErrorCode;
  constructor(code: CacheErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A store's get, set or delete failed; the request went on without it. */
export class StoreError extends CacheError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_STORE', message, options);
  }
}

/** The wrapped handler threw or its response failed mid-way; nothing was stored. */
export class HandlerError extends CacheError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_HANDLER', message, options);
  }
}

/** Bytes that claim to be an entry (disk file, peer reply) do not decode to one. */
export class EntryDecodeError extends CacheError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_ENTRY_DECODE', message, options);
  }
}

/** A background regeneration (refresh, refetch, priming) did not produce a storable response. */
export class RegenerateError extends CacheError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_REGENERATE', message, options);
  }
}

/**
 * A peer lookup failed: refused connection, bad status, unsigned or undecodable reply, reply
 * over `peers.maxEntrySize`, membership function that threw. The request went on without it
 * (rendered locally); the failure counts toward the peer's circuit breaker.
 */
export class PeerError extends CacheError {
  /** Base URL of the peer involved (`''` for a membership failure). */
  readonly peer: string;
  constructor(message: string, options: { peer: string; cause?: unknown; code?: 'ERR_PEER' | 'ERR_PEER_TIMEOUT' }) {
    super(options.code ?? 'ERR_PEER', message, options.cause === undefined ? undefined : { cause: options.cause });
    this.peer = options.peer;
  }
}

/** A peer did not answer within `peers.queryTimeout` (headers) or `peers.fetchTimeout` (body). */
export class PeerTimeoutError extends PeerError {
  constructor(message: string, options: { peer: string; cause?: unknown }) {
    super(message, { ...options, code: 'ERR_PEER_TIMEOUT' });
  }
}

/**
 * A data-cache value cannot be stored as bytes (a function, BigInt, symbol, cycle, class
 * instance...). Thrown to the caller of `cache.data.get`: a value that cannot move to disk or to a
 * peer is refused, not silently left uncached.
 */
export class DataSerializeError extends CacheError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_DATA_SERIALIZE', message, options);
  }
}

/**
 * A `cache.data.get` loader threw (reported through the `error` event, with the loader's error as
 * `cause`; the caller itself receives the loader's error unchanged).
 */
export class DataLoadError extends CacheError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_DATA_LOAD', message, options);
  }
}

/** `cache.data.fetch` could not get a response (connection refused, reset, no handler to run). */
export class DataFetchError extends CacheError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_DATA_FETCH', message, options);
  }
}

/** `cache.data.fetch` gave up waiting for a response (`data.fetch.timeout` or the call's `timeout`). */
export class DataTimeoutError extends CacheError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_DATA_TIMEOUT', message, options);
  }
}

/**
 * A sub-request or include would request a URL that is already being rendered further up the
 * same chain (a fragment that includes itself, directly or through others).
 */
export class DataLoopError extends CacheError {
  /** The chain of URLs in flight, outermost first, ending with the repeated one. */
  readonly chain: readonly string[];
  constructor(chain: readonly string[]) {
    super('ERR_DATA_LOOP', `loop: ${chain.join(' -> ')}`);
    this.chain = chain;
  }
}

/** An ESI include could not be filled (failed fragment, error status, too deep, not allowed). */
export class IncludeError extends CacheError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_DATA_INCLUDE', message, options);
  }
}

/** A purge request to the CDN (`options.cdn`) failed or was refused; it is retried with backoff, or dropped. */
export class CdnError extends CacheError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_CDN', message, options);
  }
}
