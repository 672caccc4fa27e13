/**
 * stratacache: a layered HTTP cache for any Node handler. Public exports only.
 */
export { createCache, StrataCache } from './cache.js';
export type { NodeHandler, ConnectMiddleware, KoaMiddleware, KoaLikeContext, MiddlewareOptions, CacheEvents, InvalidateOptions, InvalidateResult, PrimeOptions, CloseOptions } from './cache.js';
export type { CacheStats } from './stats.js';
export type { CacheEvent } from './engine/types.js';
export type { RefetchEvent } from './invalidation/coordinator.js';
export type { InvalidationRecord } from './invalidation/log.js';
export type { InvalidationScope } from './invalidation/epochs.js';
export type { RefetchSummary, PrimeProgress } from './invalidation/refetch.js';
export { DEFAULTS } from './options/defaults.js';
export type { FlushOptions, RefetchOptions, InvalidationOptions } from './invalidation/options.js';
export type { CacheOptions, KeyOptions, KeyFunction, StatusHeaderMode } from './options/types.js';
export type { DataOptions } from './data/options.js';
export type { Milliseconds, Bytes, Count } from './options/units.js';
export type { Entry } from './entry.js';
export { encodeEntry, decodeEntry } from './entry.js';
export type { CacheStore, MaybePromise } from './stores/store.js';
export { MemoryStore, memoryStore } from './stores/memory.js';
export type { MemoryStoreOptions } from './stores/memory.js';
export { DiskStore, diskStore } from './stores/disk.js';
export type { DiskStoreOptions } from './stores/disk.js';
export { RedisStore, redisStore, REDIS_DEFAULTS } from './stores/redis.js';
export type { RedisStoreOptions, RedisStats } from './stores/redis.js';
export type { RedisClientLike } from './stores/redis-client.js';
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
