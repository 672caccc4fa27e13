/**
 * examples/cluster.ts runs as a user would start it and shows what it claims: one render per
 * page across three nodes, PEER answers, and a stopped node whose breaker opens.
 */
import { execFile } from 'node:child_process';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { promisify } from 'node:util';

const run = promisify(execFile);
const tsx = new URL('../../node_modules/.bin/tsx', import.meta.url).pathname;

test('npx tsx examples/cluster.ts: 3 pages on 3 nodes render 3 times; a stopped node is skipped', async () => {
  const { stdout } = await run(tsx, ['examples/cluster.ts'], { timeout: 30_000 });
  assert.match(stdout, /origin renders: 3 for 3 pages/);
  assert.equal(stdout.match(/200 PEER/g)?.length, 7); // 6 in the first part, /new/1 again at the end
  assert.equal(stdout.match(/200 MISS/g)?.length, 6);
  assert.match(stdout, /breaker for node3: open/);
  assert.match(stdout, /origin renders: 6$/m);
});
