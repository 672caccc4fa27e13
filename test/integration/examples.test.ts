/**
 * Every example the README shows runs: each is started as a user would (through tsx) in its
 * self-check mode, and its output is checked for a miss, then a hit, and one render.
 */
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promisify } from 'node:util';

const run = promisify(execFile);
const tsx = new URL('../../node_modules/.bin/tsx', import.meta.url).pathname;

for (const name of ['raw', 'express', 'koa']) {
  test(`examples/${name}.ts --check: miss, then hit, one render`, async () => {
    const { stdout } = await run(tsx, [`examples/${name}.ts`, '--check'], { timeout: 30_000 });
    const lines = stdout.trim().split('\n');
    assert.match(lines[1] ?? '', /^200 MISS /);
    assert.match(lines[2] ?? '', /^200 HIT /);
    assert.equal(lines[1]!.slice('200 MISS '.length), lines[2]!.slice('200 HIT '.length), 'the hit repeats the miss body');
    assert.equal(lines.at(-1), 'renders: 1');
  });
}

test('npm start demo: coalesces the burst and never shares the private page', async () => {
  const { stdout } = await run(tsx, ['examples/demo.ts'], { timeout: 30_000 });
  assert.match(stdout, /50 concurrent cold GET \/news: 1 distinct body, 1 render/);
  assert.match(stdout, /GET \/account again \(never shared\)\s+200 PASS/);
  assert.match(stdout, /GET \/home If-None-Match\s+304 HIT/);
});
