// Next.js on stratacache (docs/next.md): both cache extension points go to cache-handler.mjs.
import { fileURLToPath } from 'node:url';

const here = (file) => fileURLToPath(new URL(file, import.meta.url));

export default {
  poweredByHeader: false,
  cacheComponents: true,
  partialPrefetching: true,
  // ISR pages, route handlers, fetch: stratacache instead of .next/cache on this disk.
  cacheHandler: here('./cache-handler.mjs'),
  // Next's own in-memory copy in front of it would not hear other instances' revalidations.
  cacheMaxMemorySize: 0,
  // 'use cache' and 'use cache: remote'.
  cacheHandlers: { default: here('./use-cache-handler.mjs'), remote: here('./use-cache-handler.mjs') },
};
