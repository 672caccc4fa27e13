/**
 * examples/cluster.ts runs as a user would start it and shows what it claims: each node reached
 * on its own port (its own Host), one render per page across three nodes, PEER answers, a flush
 * on one node reaching all three, and a stopped node whose breaker opens.
 */
import { execFile } from 'node:child_process';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { promisify } from 'node:util';

const run = promisify(execFile);
const tsx = new URL('../../node_modules/.bin/tsx', import.meta.url).pathname;

test('npx tsx examples/cluster.ts: 3 pages on 3 nodes render 3 times; a flush reaches every node; a stopped node is skipped', async () => {
  const { stdout } = await run(tsx, ['examples/cluster.ts'], { timeout: 60_000 });
  assert.match(stdout, /origin renders: 3 for 3 pages/);
  assert.equal(stdout.match(/200 PEER/g)?.length, 7); // 6 in the first part, /new/1 again at the end
  assert.equal(stdout.match(/200 MISS/g)?.length, 6);
  // The flush on node1 invalidated the copies of node2 and node3 too: stale while they refresh.
  assert.match(stdout, /GET \/products  -> node1  200 STALE\n  GET \/products  -> node2  200 STALE\n  GET \/products  -> node3  200 STALE\n/);
  const refreshed = /every node has the new \/products \(origin renders of \/products: (\d)\)/.exec(stdout);
  assert.ok(refreshed, stdout);
  assert.match(stdout, /breaker for node3: open/);
  // 3 pages, the refreshes after the flush, 3 new pages.
  assert.match(stdout, new RegExp(`origin renders: ${6 + Number(refreshed[1]) - 1}$`, 'm'));
});
