/**
 * The observability examples the README shows run as documented: examples/tracing.ts prints the
 * spans of a miss, a hit and a flush; examples/console.ts --check reports its traffic through the
 * console's JSON and /metrics.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';

const run = promisify(execFile);
const tsx = new URL('../../node_modules/.bin/tsx', import.meta.url).pathname;

test('examples/tracing.ts prints lookup, render and flush spans', async () => {
  const { stdout } = await run(tsx, ['examples/tracing.ts'], { timeout: 60_000 });
  assert.match(stdout, /span stratacache:lookup +[\d.]+ ms \{"key":"127\.0\.0\.1:\d+\/hello","url":"\/hello","method":"GET","async":true,"status":"MISS"\}/);
  assert.match(stdout, /span stratacache:render +[\d.]+ ms \{.*"background":false.*"statusCode":200,"stored":true\}/);
  assert.match(stdout, /span stratacache:lookup +[\d.]+ ms \{.*"status":"HIT"\}/);
  assert.match(stdout, /span stratacache:flush +[\d.]+ ms \{"paths":\["\/hello"\].*"id":1\}/);
});

test('examples/console.ts --check: the console and /metrics report the traffic, the dead peer and the flush', async () => {
  const { stdout } = await run(tsx, ['examples/console.ts', '--check'], { timeout: 60_000 });
  const hits = /console: (\d+) hits, (\d+) misses/.exec(stdout);
  assert.ok(hits, stdout);
  assert.ok(Number(hits[1]) > 0);
  assert.match(stdout, /peer down: breaker open/);
  assert.match(stdout, /invalidation soft \/products/);
  assert.match(stdout, /refetch (stored|from-peer) \/products/);
  assert.match(stdout, new RegExp(`stratacache_requests_total\\{status="hit"\\} ${hits[1]}`));
});
