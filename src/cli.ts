#!/usr/bin/env node
/**
 * `stratacache --upstream URL`: the cache as a standalone caching reverse proxy in front of any
 * upstream. Every flag maps onto an option; `--help` lists them.
 */
import { realpathSync } from 'node:fs';
import http from 'node:http';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { createCache } from './cache.js';
import type { CacheOptions } from './options/types.js';
import { createUpstreamHandler } from './proxy/upstream.js';

const USAGE = `usage: stratacache --upstream URL [options]

  --upstream URL          where misses go (required), e.g. http://127.0.0.1:8080
  --port N                listen port (default 3000; 0 picks a free one)
  --host ADDR             listen address (default 127.0.0.1)
  --max-size BYTES        memory budget of the response cache (default 64 MiB)
  --default-ttl MS        freshness when the upstream sends none (default 60000)
  --targeted-cache-control LIST  targeted cache-control fields obeyed (RFC 9213), comma-separated
                          (default cdn-cache-control; '' obeys Cache-Control only)
  --preserve-host         send the client's Host upstream (default: the upstream's host)
  --upstream-timeout MS   wait this long for upstream headers, then 504 / stale (default 30000)
  --peers URL,URL,...     cluster nodes; needs --self and STRATACACHE_PEER_SECRET
  --self URL              this node's URL as the peers reach it
  --flush-token TOKEN     bearer token for the flush endpoint (or STRATACACHE_FLUSH_TOKEN)
  --help                  this text

Environment: STRATACACHE_PEER_SECRET (shared peer secret), DEBUG=stratacache:* (diagnostics).`;

function number(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n)) throw new TypeError(`expected --${name} to be an integer, got '${value}'`);
  return n;
}

/** Parses argv into cache options, the upstream and where to listen. Exported for tests. */
export function parseCli(argv: readonly string[], env: NodeJS.ProcessEnv = process.env) {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      upstream: { type: 'string' },
      port: { type: 'string' },
      host: { type: 'string' },
      'max-size': { type: 'string' },
      'default-ttl': { type: 'string' },
      'targeted-cache-control': { type: 'string' },
      'preserve-host': { type: 'boolean' },
      'upstream-timeout': { type: 'string' },
      peers: { type: 'string' },
      self: { type: 'string' },
      'flush-token': { type: 'string' },
      help: { type: 'boolean' },
    },
    strict: true,
  });
  if (values.help) return { help: true as const };
  if (values.upstream === undefined) throw new TypeError('--upstream is required');
  const options: CacheOptions = {};
  const maxSize = number('max-size', values['max-size']);
  if (maxSize !== undefined) options.maxSize = maxSize;
  const defaultTtl = number('default-ttl', values['default-ttl']);
  if (defaultTtl !== undefined) options.defaultTtl = defaultTtl;
  // A reverse proxy is the CDN-like cache RFC 9213 addresses: it obeys CDN-Cache-Control by default.
  options.targetedCacheControl = (values['targeted-cache-control'] ?? 'cdn-cache-control').split(',').map((s) => s.trim()).filter(Boolean);
  if (values.peers !== undefined) {
    options.peers = { self: values.self, nodes: values.peers.split(',').filter(Boolean), secret: env.STRATACACHE_PEER_SECRET };
  }
  const token = values['flush-token'] ?? env.STRATACACHE_FLUSH_TOKEN;
  if (token !== undefined) options.flush = { token };
  return {
    help: false as const,
    upstream: values.upstream,
    port: number('port', values.port) ?? 3000,
    host: values.host ?? '127.0.0.1',
    preserveHost: values['preserve-host'] ?? false,
    upstreamTimeout: number('upstream-timeout', values['upstream-timeout']),
    options,
  };
}

async function main(): Promise<void> {
  let parsed: ReturnType<typeof parseCli>;
  try {
    parsed = parseCli(process.argv.slice(2));
  } catch (error) {
    console.error(`stratacache: ${(error as Error).message}\n\n${USAGE}`);
    process.exit(2);
  }
  if (parsed.help) {
    console.log(USAGE);
    return;
  }
  let cache: ReturnType<typeof createCache>;
  let handler: ReturnType<typeof createUpstreamHandler>;
  try {
    cache = createCache(parsed.options);
    handler = createUpstreamHandler(parsed.upstream, { preserveHost: parsed.preserveHost, ...(parsed.upstreamTimeout !== undefined ? { timeout: parsed.upstreamTimeout } : {}) });
  } catch (error) {
    console.error(`stratacache: ${(error as Error).message}`);
    process.exit(2);
  }
  cache.on('error', (error) => console.error(`stratacache: ${error.code}: ${error.message}`));
  const server = http.createServer(cache.wrap(handler));
  server.listen(parsed.port, parsed.host, () => {
    const address = server.address();
    const port = typeof address === 'object' && address !== null ? address.port : parsed.port;
    console.log(`stratacache listening on http://${parsed.host}:${port}/ -> ${parsed.upstream}`);
  });
  const stop = (): void => {
    server.close();
    server.closeAllConnections();
    void cache.close().then(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

/** True when this module is the program (also through npm's bin symlink), not an import. */
function isMain(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(script)).href;
  } catch {
    return false;
  }
}

if (isMain()) void main();
