// Next's `cacheHandlers` take an object as the default export: the one cache-handler.mjs made.
export { useCacheHandler as default } from './cache-handler.mjs';
