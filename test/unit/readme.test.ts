/**
 * The README's and the docs' code is real: every ```ts block names the example file it is taken
 * from on its first line, and every line of the block is in that file (which the type-check
 * compiles and test/integration/examples.test.ts runs); every shell line names npm scripts,
 * example files and stratacache commands that exist; every relative link points at a file that
 * exists.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import assert from 'node:assert/strict';

const root = new URL('../../', import.meta.url);
const pages = ['README.md', ...readdirSync(new URL('docs/', root)).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
const text = new Map(pages.map((page) => [page, readFileSync(new URL(page, root), 'utf8')]));
const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as { scripts: Record<string, string> };
const commands = new Set(['serve', 'flush', 'prime', 'stats', 'explain', 'demo', '--help', '--version']);

test('the README has TypeScript examples', () => {
  const blocks = [...text.get('README.md')!.matchAll(/```ts\n([\s\S]*?)```/g)];
  assert.ok(blocks.length >= 1, `found ${blocks.length} blocks`);
});

test('the docs have TypeScript examples', () => {
  const blocks = pages.filter((p) => p !== 'README.md').flatMap((p) => [...text.get(p)!.matchAll(/```ts\n([\s\S]*?)```/g)]);
  assert.ok(blocks.length >= 3, `found ${blocks.length} blocks`);
});

for (const page of pages) {
  const doc = text.get(page)!;
  const blocks = [...doc.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);
  for (const [i, block] of blocks.entries()) {
    const lines = block.split('\n');
    const header = /^\/\/ (examples\/[\w./-]+\.ts)( \(the whole program\))?$/.exec(lines[0] ?? '');
    const source = header?.[1];
    const whole = header?.[2] !== undefined;
    test(`${page} block ${i + 1} (${source ?? lines[0]}) is a runnable example or an excerpt of one`, () => {
      assert.ok(source, `block ${i + 1} of ${page} must start with "// examples/<file>.ts", got ${JSON.stringify(lines[0])}`);
      const file = readFileSync(new URL(source, root), 'utf8');
      if (whole) {
        // A whole program: the block is the file as a user copies it, less the file's header comment.
        const program = file.replace(/^\/\*\*[\s\S]*?\*\/\n/, '').replace(/^\n+|\n+$/g, '');
        assert.equal(lines.slice(1).join('\n').replace(/\n+$/, ''), program, `${source} differs from its block in ${page}`);
        return;
      }
      const fileLines = new Set(file.split('\n').map((l) => l.trim()));
      for (const line of lines.slice(1)) {
        const t = line.trim();
        if (t === '') continue;
        assert.ok(fileLines.has(t), `${source} has no line ${JSON.stringify(t)} (${page})`);
      }
    });
  }

  // Shell lines, and inline code that runs something, name real things: npm scripts that exist,
  // files that exist, stratacache commands the bin has (a flag alone means `serve`).
  const shellLines: string[] = [];
  let fence: string | undefined;
  for (const line of doc.split('\n')) {
    const open = /^```(\w*)\s*$/.exec(line);
    if (open !== null) fence = fence === undefined ? open[1]! : undefined;
    else if (fence !== undefined && ['', 'sh', 'shell', 'bash'].includes(fence)) shellLines.push(line);
  }
  const inline = [...doc.replace(/```[\s\S]*?```/g, '').matchAll(/`([^`\n]+)`/g)].map((m) => m[1]!).filter((c) => /^(?:[A-Z_]+=\S+ )*(?:npm|npx|stratacache) /.test(c));
  const runs = [...shellLines, ...inline];
  const scripts = runs.flatMap((line) => [...line.matchAll(/npm (?:run )?(start|test|run [\w:-]+)/g)].map((m) => m[1]!));
  const files = runs.flatMap((line) => [...line.matchAll(/npx tsx ((?:examples|src|bench|scripts)\/[\w./-]+\.ts)/g)].map((m) => m[1]!));
  const bin = runs.flatMap((line) => [...line.matchAll(/(?:npx )?stratacache ([\w-]+)/g)].map((m) => m[1]!)).filter((c) => !c.startsWith('-') || c === '--help' || c === '--version');
  if (scripts.length + files.length + bin.length > 0) {
    test(`every npm script, file and stratacache command ${page} runs exists`, () => {
      for (const script of scripts) {
        const name = script.replace(/^run /, '');
        assert.ok(pkg.scripts[name] !== undefined, `${page} runs 'npm ${script}', but package.json has no '${name}' script`);
      }
      for (const file of files) assert.ok(existsSync(new URL(file, root)), `${page} runs ${file}, which does not exist`);
      for (const command of bin) assert.ok(commands.has(command), `${page} runs 'stratacache ${command}', which is not a command`);
    });
  }

  const links = [...doc.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!).filter((t) => !/^[a-z]+:/.test(t) && !t.startsWith('#'));
  if (links.length > 0) {
    test(`every relative link of ${page} points at a file that exists`, () => {
      for (const target of links) {
        assert.ok(existsSync(new URL(target.replace(/#.*$/, ''), new URL(page, root))), `${page} links to ${target}, which does not exist`);
      }
    });
  }
}

test('the README shows the commands that run the demo and the tests', () => {
  const readme = text.get('README.md')!;
  assert.match(readme, /npm run demo/);
  assert.match(readme, /npm test/);
  assert.ok(pkg.scripts['demo'] !== undefined && pkg.scripts['start'] !== undefined && pkg.scripts['test'] !== undefined);
});

test('the README stays short', () => {
  const lines = text.get('README.md')!.split('\n').length;
  assert.ok(lines <= 360, `the README has ${lines} lines`);
});
