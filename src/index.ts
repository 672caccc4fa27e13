/**
 * stratacache: a layered HTTP cache for any Node handler. Public exports only.
 */
export { createCache, StrataCache } from './cache.js';
export type { NodeHandler, ConnectMiddleware, KoaMiddleware, KoaLikeContext, MiddlewareOptions, CacheEvents, InvalidateOptions, InvalidateResult, PrimeOptions } from './cache.js';
export type { CacheStats, CacheEvent, RefetchEvent } from './engine.js';
export type { InvalidationRecord } from './invalidation/log.js';
export type { InvalidationScope } from './invalidation/epochs.js';
export type { RefetchSummary, PrimeProgress } from './invalidation/refetch.js';
export { DEFAULTS } from './options.js';
export type { FlushOptions, RefetchOptions, InvalidationOptions } from './options.js';
export type { CacheOptions, DataOptions, KeyOptions, KeyFunction, StatusHeaderMode, Milliseconds, Bytes, Count } from './options.js';
export type { Entry } from './entry.js';
export { encodeEntry, decodeEntry } from './entry.js';
export type { CacheStore, MaybePromise } from './stores/store.js';
export { MemoryStore } from './stores/memory.js';
export type { MemoryStoreOptions } from './stores/memory.js';
export { DiskStore } from './stores/disk.js';
export type { DiskStoreOptions } from './stores/disk.js';
export { CacheError, StoreError, HandlerError, EntryDecodeError, RegenerateError, PeerError, PeerTimeoutError } from './errors.js';
export { DataSerializeError, DataLoadError, DataFetchError, DataTimeoutError, DataLoopError, IncludeError } from './errors.js';
export { DataCache } from './data/cache.js';
export type { DataGetOptions, DataFetchOptions, DataResponse, DataStatus, DataStats } from './data/cache.js';
export type { DataValue } from './data/serialize.js';
export type { CacheErrorCode } from './errors.js';
export type { CacheStatus } from './serve.js';
export type { PeersOptions, PeerNodes, PeerStrategy } from './peers/options.js';
export type { PeerCounters, PeerState } from './peers/cluster.js';
export type { BreakerState } from './peers/breaker.js';
export { createUpstreamHandler } from './proxy/upstream.js';
export type { UpstreamOptions } from './proxy/upstream.js';
export { CHANNELS as TRACING_CHANNELS } from './observe/tracing.js';
export type { SpanContext, LookupContext, RenderContext, PeerCallContext, StoreContext, FlushContext } from './observe/tracing.js';
export type { ConsoleHandler, ConsoleState } from './observe/console.js';
export type { RecentEvent, StatsSample } from './observe/recent.js';
export type { TierStats, ObservedState, MetricsRegistry } from './observe/metrics.js';
