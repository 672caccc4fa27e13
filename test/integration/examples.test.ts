/**
 * Every example the README and docs/adapters.md show runs: each is started as a user would (through tsx) in its
 * self-check mode, and its output is checked for a miss, then a hit, and one render.
 */
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promisify } from 'node:util';

const run = promisify(execFile);
const tsx = new URL('../../node_modules/.bin/tsx', import.meta.url).pathname;

for (const name of ['raw', 'express', 'koa', 'fastify', 'hono', 'nest', 'reverse-proxy']) {
  test(`examples/${name}.ts --check: miss, then hit, one render`, async () => {
    const { stdout } = await run(tsx, [`examples/${name}.ts`, '--check'], { timeout: 30_000 });
    const lines = stdout.trim().split('\n');
    assert.match(lines[1] ?? '', /^200 MISS /);
    assert.match(lines[2] ?? '', /^200 HIT /);
    assert.equal(lines[1]!.slice('200 MISS '.length), lines[2]!.slice('200 HIT '.length), 'the hit repeats the miss body');
    assert.equal(lines.at(-1), 'renders: 1');
  });
}

test('examples/python-upstream.ts --check: a Python render server behind the caching proxy renders once', async (t) => {
  try {
    await run('python3', ['--version']);
  } catch {
    return t.skip('python3 is not installed: the non-Node render server of this recipe cannot start');
  }
  const { stdout } = await run(tsx, ['examples/python-upstream.ts', '--check'], { timeout: 30_000 });
  const lines = stdout.trim().split('\n');
  assert.equal(lines[1], '200 MISS <h1>/news rendered by python, render 1</h1>');
  assert.equal(lines[2], '200 HIT <h1>/news rendered by python, render 1</h1>');
  assert.equal(lines.at(-1), 'renders: 1', 'the render server itself counted one render');
});

test('npm start demo: coalesces the burst and never shares the private page', async () => {
  const { stdout } = await run(tsx, ['examples/demo.ts'], { timeout: 30_000 });
  assert.match(stdout, /50 concurrent cold GET \/news: 1 distinct body, 1 render/);
  assert.match(stdout, /GET \/account again \(never shared\)\s+200 PASS/);
  assert.match(stdout, /GET \/home If-None-Match\s+304 HIT/);
});

test('examples/publish.ts --check: a refetching flush under load serves STALE, then the new version', async () => {
  const { stdout } = await run(tsx, ['examples/publish.ts', '--check'], { timeout: 30_000 });
  assert.match(stdout, /primed: HIT <h1>\/content\/site\/en\/page.html v1<\/h1>/);
  assert.match(stdout, /flush: 200 <H1>OK<\/H1>/);
  const during = /100 requests during the flush: (\d+) STALE, (\d+) HIT, (\d+) from the render tier/.exec(stdout);
  assert.ok(during, stdout);
  assert.equal(during[3], '0', 'no client waited for the render tier');
  assert.ok(Number(during[1]) > 0, 'the old copies were served while the refetch ran');
  assert.match(stdout, /after: \/content\/site\/en\/page.html -> HIT <h1>\/content\/site\/en\/page.html v2<\/h1>/);
  // one render to prime each page, one more each after the flush (the refetch, and one grace refresh per page)
  assert.match(stdout, /renders: \{"\/content\/site\/en\/page.html":2,"\/content\/site\/en.html":2,"\/content\/site\/de\/page.html":2\}/);
});
