/**
 * The README's code is real: every ```ts block names the example file it is taken from on its
 * first line, and every line of the block is in that file (which the type-check compiles and
 * test/integration/examples.test.ts runs).
 */
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import assert from 'node:assert/strict';

const root = new URL('../../', import.meta.url);
const readme = readFileSync(new URL('README.md', root), 'utf8');
const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);

test('the README has TypeScript examples', () => {
  assert.ok(blocks.length >= 3, `found ${blocks.length} blocks`);
});

for (const [i, block] of blocks.entries()) {
  const lines = block.split('\n');
  const source = /^\/\/ (examples\/[\w./-]+\.ts)$/.exec(lines[0] ?? '')?.[1];
  test(`README block ${i + 1} (${source ?? lines[0]}) is an excerpt of a runnable example`, () => {
    assert.ok(source, `block ${i + 1} must start with "// examples/<file>.ts", got ${JSON.stringify(lines[0])}`);
    const file = readFileSync(new URL(source, root), 'utf8');
    const fileLines = new Set(file.split('\n').map((l) => l.trim()));
    for (const line of lines.slice(1)) {
      const t = line.trim();
      if (t === '') continue;
      assert.ok(fileLines.has(t), `${source} has no line ${JSON.stringify(t)}`);
    }
  });
}
