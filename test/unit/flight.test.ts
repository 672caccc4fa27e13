import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { settledWithin } from '../../src/flight.js';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../../', import.meta.url));

test('settledWithin: true when every promise settles in time, false when one hangs past the bound', async () => {
  assert.equal(await settledWithin([Promise.resolve(1), Promise.reject(new Error('x'))], 1_000), true);
  assert.equal(await settledWithin([new Promise(() => {})], 20), false);
});

test('settledWithin keeps the process alive until it answers (close() awaited at the top level)', async () => {
  // With only a hung promise and an unref'd bound timer left, Node exits mid-await with code 13
  // and close() never returns to the caller.
  const script = `import { settledWithin } from './src/flight.ts';
const settled = await settledWithin([new Promise(() => {})], 50);
console.log('answered', settled);`;
  const { stdout } = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: root });
  assert.equal(stdout.trim(), 'answered false');
});
