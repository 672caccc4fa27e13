/**
 * The published declarations type-check for a consumer: the package is packed as `npm pack`
 * publishes it, installed into a fresh `"type": "module"` project with a strict tsconfig and
 * `skipLibCheck: false`, and `tsc --noEmit` compiles types-consumer/consumer.ts against the
 * lowest `@types/node` the package supports (engines: node >= 20) and the newest on the registry.
 * The same project runs the README's quick start (examples/raw.ts saved as `server.ts`) through
 * tsx, as the README tells a user to. Only the npm registry is used; `--prefer-offline` takes what
 * the shared npm cache already has.
 */
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../../', import.meta.url));
const consumer = fileURLToPath(new URL('types-consumer/consumer.ts', import.meta.url));

/** Runs `command` in `cwd`; on failure the error carries the command's output. */
async function sh(cwd: string, command: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await run(command, args, { cwd, maxBuffer: 16 * 1024 * 1024 });
    return stdout;
  } catch (error) {
    const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
    throw new Error(`${command} ${args.join(' ')} failed:\n${stdout}\n${stderr}`);
  }
}

const install = ['install', '--no-audit', '--no-fund', '--prefer-offline', '--ignore-scripts', '--save-dev'];
let dir = '';
let project = '';

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'stratacache-types-'));
  project = join(dir, 'consumer');
  // `npm pack` runs `prepare` (the build), so the tarball holds declarations built from this tree.
  await sh(root, 'npm', ['pack', '--pack-destination', dir]);
  const tarball = (await readdir(dir)).find((f) => /^stratacache-.*\.tgz$/.test(f));
  assert.ok(tarball, 'npm pack wrote no stratacache-*.tgz');
  const typescript = await versionOf(join(root, 'node_modules/typescript'));
  const tsx = await versionOf(join(root, 'node_modules/tsx'));
  await mkdir(project);
  await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module' }));
  await writeFile(
    join(project, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'es2022',
        module: 'nodenext',
        moduleResolution: 'nodenext',
        strict: true,
        exactOptionalPropertyTypes: true,
        noUncheckedIndexedAccess: true,
        skipLibCheck: false,
        noEmit: true,
        types: ['node'],
      },
      include: ['index.ts', 'server.ts'],
    }),
  );
  await copyFile(consumer, join(project, 'index.ts'));
  // The README's quick start: examples/raw.ts without its header comment.
  const raw = await readFile(join(root, 'examples/raw.ts'), 'utf8');
  await writeFile(join(project, 'server.ts'), raw.replace(/^\/\*\*[\s\S]*?\*\/\n/, ''));
  await sh(project, 'npm', [...install, join(dir, tarball), `typescript@${typescript}`, `tsx@${tsx}`, '@types/node@20']);
});

after(async () => {
  if (dir !== '') await rm(dir, { recursive: true, force: true });
});

/** The version of the package installed in `dir`. */
async function versionOf(dir: string): Promise<string> {
  return (JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as { version: string }).version;
}

/** Type-checks the consumer with the `@types/node` installed now; returns that version. */
async function check(): Promise<string> {
  await sh(project, join(project, 'node_modules/.bin/tsc'), ['-p', '.', '--noEmit']);
  return versionOf(join(project, 'node_modules/@types/node'));
}

test('the declarations type-check with skipLibCheck off against the lowest @types/node (20)', async () => {
  const version = await check();
  assert.match(version, /^20\./);
});

test('the README quick start runs as written in a "type": "module" project', async () => {
  const lines = (await sh(project, join(project, 'node_modules/.bin/tsx'), ['server.ts', '--check'])).trim().split('\n');
  assert.match(lines[1] ?? '', /^200 MISS /);
  assert.match(lines[2] ?? '', /^200 HIT /);
  assert.equal(lines.at(-1), 'renders: 1');
});

test('the declarations type-check with skipLibCheck off against the newest @types/node on the registry', async () => {
  const newest = (await sh(project, 'npm', ['view', '@types/node', 'version'])).trim();
  assert.match(newest, /^\d+\.\d+\.\d+$/);
  await sh(project, 'npm', [...install, `@types/node@${newest}`]);
  assert.equal(await check(), newest);
});
