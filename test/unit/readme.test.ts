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
  const header = /^\/\/ (examples\/[\w./-]+\.ts)( \(the whole program\))?$/.exec(lines[0] ?? '');
  const source = header?.[1];
  const whole = header?.[2] !== undefined;
  test(`README block ${i + 1} (${source ?? lines[0]}) is a runnable example or an excerpt of one`, () => {
    assert.ok(source, `block ${i + 1} must start with "// examples/<file>.ts", got ${JSON.stringify(lines[0])}`);
    const file = readFileSync(new URL(source, root), 'utf8');
    if (whole) {
      // A whole program: the block is the file as a user copies it, less the file's header comment.
      const program = file.replace(/^\/\*\*[\s\S]*?\*\/\n/, '').replace(/^\n+|\n+$/g, '');
      assert.equal(lines.slice(1).join('\n').replace(/\n+$/, ''), program, `${source} differs from its README block`);
      return;
    }
    const fileLines = new Set(file.split('\n').map((l) => l.trim()));
    for (const line of lines.slice(1)) {
      const t = line.trim();
      if (t === '') continue;
      assert.ok(fileLines.has(t), `${source} has no line ${JSON.stringify(t)}`);
    }
  });
}

// The README's shell lines name real things: npm scripts that exist, example files that exist,
// stratacache commands the bin has.
const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as { scripts: Record<string, string> };
const shellLines: string[] = [];
let fence: string | undefined;
for (const line of readme.split('\n')) {
  const open = /^```(\w*)\s*$/.exec(line);
  if (open !== null) fence = fence === undefined ? open[1]! : undefined;
  else if (fence !== undefined && ['', 'sh', 'shell', 'bash'].includes(fence)) shellLines.push(line);
}
const commands = new Set(['serve', 'flush', 'prime', 'stats', 'demo', '--help', '--version']);
test('every npm script, example file and stratacache command the README shows exists', () => {
  let checked = 0;
  for (const line of shellLines) {
    for (const m of line.matchAll(/npm (?:run )?(start|test|run [\w:-]+)/g)) {
      const script = m[1]!.replace(/^run /, '');
      assert.ok(pkg.scripts[script] !== undefined, `README runs 'npm ${m[1]}', but package.json has no '${script}' script`);
      checked++;
    }
    for (const m of line.matchAll(/npx tsx ((?:examples|src)\/[\w./-]+\.ts)/g)) {
      assert.doesNotThrow(() => readFileSync(new URL(m[1]!, root)), `README runs ${m[1]}, which does not exist`);
      checked++;
    }
    for (const m of line.matchAll(/(?:npx )?stratacache ([\w-]+)/g)) {
      assert.ok(commands.has(m[1]!), `README runs 'stratacache ${m[1]}', which is not a command`);
      checked++;
    }
  }
  assert.ok(checked >= 4, `only ${checked} commands found`);
});
