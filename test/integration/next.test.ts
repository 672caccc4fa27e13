/**
 * The Next.js custom-server recipe, run for real: `next build` of the smallest app that has each
 * kind of route (static, ISR, dynamic, route handler), then `examples/next-server.ts --check`,
 * which serves it through `http.createServer(cache.wrap(nextHandler))`. What the cache does with
 * each route follows the Cache-Control Next sends.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { before, test } from 'node:test';
import { promisify } from 'node:util';

const run = promisify(execFile);
const bin = (name: string): string => new URL(`../../node_modules/.bin/${name}`, import.meta.url).pathname;
const env = { ...process.env, NEXT_TELEMETRY_DISABLED: '1' };

before(async () => {
  // The production build the custom server needs (about 20 s; a dev server would compile on request).
  // Next 16's Turbopack build also picks up a file named examples/proxy.ts (or middleware.ts) as
  // this app's proxy and fails on it: keep those names out of examples/.
  await run(bin('next'), ['build', 'examples/next-app'], { timeout: 240_000, env });
}, { timeout: 240_000 });

test('Next.js custom server behind cache.wrap(): static and ISR pages and a public route handler are stored, dynamic pages never', { timeout: 60_000 }, async () => {
  const { stdout } = await run(bin('tsx'), ['examples/next-server.ts', '--check'], { timeout: 60_000, env });
  const lines = stdout.trim().split('\n').filter((l) => l.startsWith('/'));
  assert.deepEqual(lines, [
    '/ 200 MISS s-maxage=31536000 static home',
    '/ 200 HIT s-maxage=31536000 static home',
    '/isr 200 MISS s-maxage=60, stale-while-revalidate=31535940 isr page',
    '/isr 200 HIT s-maxage=60, stale-while-revalidate=31535940 isr page',
    '/dynamic 200 MISS private, no-cache, no-store, max-age=0, must-revalidate dynamic 1',
    '/dynamic 200 PASS private, no-cache, no-store, max-age=0, must-revalidate dynamic 2',
    '/api/time 200 MISS public, max-age=60 {"calls":1}',
    '/api/time 200 HIT public, max-age=60 {"calls":1}',
  ]);
});
