/**
 * Spans from the cache's tracing channels (node:diagnostics_channel), printed as they end. An
 * OpenTelemetry or APM integration subscribes the same way; stratacache depends on none of them.
 *
 *   npx tsx examples/tracing.ts    # a miss, a hit and a flush, with their spans; exits
 */
import diagnostics from 'node:diagnostics_channel';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createCache, TRACING_CHANNELS } from 'stratacache';

const started = new WeakMap<object, number>();
function print(name: string, context: object): void {
  const ms = performance.now() - (started.get(context) ?? performance.now());
  const { error, ...fields } = context as { error?: unknown };
  console.log(`span ${name.padEnd(18)} ${ms.toFixed(2).padStart(6)} ms ${JSON.stringify(fields)}${error === undefined ? '' : ` error: ${String(error)}`}`);
}
for (const name of Object.values(TRACING_CHANNELS)) {
  diagnostics.tracingChannel(name).subscribe({
    start: (context) => void started.set(context as object, performance.now()),
    // A span ends at `end` when the step answered synchronously, else at `asyncEnd`.
    end: (context) => void ((context as { async?: boolean }).async ? undefined : print(name, context as object)),
    asyncStart: () => undefined,
    asyncEnd: (context) => print(name, context as object),
    error: () => undefined,
  });
}

const cache = createCache();
const server = http.createServer(
  cache.wrap(async (req, res) => {
    await new Promise((r) => setTimeout(r, 20)); // a render
    res.setHeader('cache-control', 'public, max-age=60');
    res.end(`<h1>${req.url}</h1>`);
  }),
);
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

for (const label of ['first request (miss)', 'second request (hit)']) {
  console.log(`-- ${label}`);
  const res = await fetch(`${base}/hello`);
  console.log(`   ${res.status} ${res.headers.get('x-cache')}`);
  await res.arrayBuffer();
}
console.log('-- flush /hello');
await cache.invalidate('/hello');
server.close();
await cache.close();
