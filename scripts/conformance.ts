/**
 * `npm run conformance`: the HTTP cache conformance suite (the one behind cache-tests.fyi, a copy in
 * `../shared/cache-tests/`) against the CLI's reverse proxy.
 *
 * Builds, starts `dist/cli.js` on a free 127.0.0.1 port in front of the suite's origin
 * (http://127.0.0.1:8000, started by the suite's run.sh when nothing answers there), runs the
 * suite, prints the required / optimal / check scores and every failure, stops the proxy, and
 * exits 1 when a score is below `conformance-floor.json`.
 *
 *   npm run conformance                 # build, run, compare with the floor
 *   npm run conformance -- --no-build   # reuse dist/
 *
 * Environment: STRATACACHE_CACHE_TESTS (the suite's directory; default ../shared/cache-tests beside
 * the repository), CONFORMANCE_OUT (results file; default a temporary directory).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const suite = path.resolve(process.env.STRATACACHE_CACHE_TESTS ?? path.join(root, '..', 'shared', 'cache-tests'));
const ORIGIN = 'http://127.0.0.1:8000';
/** The CLI flags under test: what the suite expects of a shared cache (no invented freshness). */
const PROXY_FLAGS = ['--default-ttl', '0'];

interface Floor {
  required: number;
  optimal: number;
}

interface Summary {
  required: { total: number; passed: number };
  optimal: { total: number; passed: number };
  check: { total: number; yes: number };
  tests: Record<string, { kind: string; status: string; raw: unknown }>;
}

function fail(message: string): never {
  console.error(`conformance: ${message}`);
  process.exit(2);
}

/** Starts the CLI on port 0 and resolves with its URL once it prints where it listens. */
function startProxy(): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [path.join(root, 'dist', 'cli.js'), 'serve', '--upstream', ORIGIN, '--port', '0', ...PROXY_FLAGS], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`the proxy did not start: ${out}`)), 15_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = /listening on (http:\/\/[^/\s]+)/.exec(out);
      if (match !== null) {
        clearTimeout(timer);
        resolve({ child, url: match[1]! });
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the proxy exited (${code}): ${out}`));
    });
  });
}

async function main(): Promise<void> {
  if (!existsSync(path.join(suite, 'run.sh'))) fail(`the suite is not at ${suite} (set STRATACACHE_CACHE_TESTS)`);
  if (!process.argv.includes('--no-build')) {
    const build = spawnSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: 'inherit' });
    if (build.status !== 0) fail('npm run build failed');
  }
  const out = process.env.CONFORMANCE_OUT ?? path.join(mkdtempSync(path.join(tmpdir(), 'stratacache-conformance-')), 'results.json');
  const { child, url } = await startProxy();
  let code: number | null;
  try {
    console.log(`conformance: proxy ${url} (${PROXY_FLAGS.join(' ')}) -> ${ORIGIN}`);
    const run = spawn('bash', [path.join(suite, 'run.sh'), url, out], { stdio: 'inherit' });
    code = await new Promise<number | null>((resolve) => run.on('exit', resolve));
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => (child.exitCode !== null ? resolve(undefined) : child.on('exit', resolve)));
  }
  if (code !== 0) fail(`run.sh failed (${code})`);
  report(JSON.parse(readFileSync(out.replace(/\.json$/, '.summary.json'), 'utf8')) as Summary);
}

function report(s: Summary): void {
  const floor = JSON.parse(readFileSync(path.join(root, 'conformance-floor.json'), 'utf8')) as Floor;
  console.log(`\nrequired ${s.required.passed}/${s.required.total}, optional ${s.optimal.passed}/${s.optimal.total}, check ${s.check.yes}/${s.check.total} yes`);
  const failures = Object.entries(s.tests).filter(([, t]) => t.kind !== 'check' && t.status !== 'pass');
  console.log(`not passed (${failures.length}):`);
  for (const [id, t] of failures.sort(([, a], [, b]) => a.kind.localeCompare(b.kind))) {
    const why = Array.isArray(t.raw) ? ` - ${t.raw.join(': ')}` : '';
    console.log(`  [${t.kind}] ${id} (${t.status})${why}`);
  }
  const below: string[] = [];
  if (s.required.passed < floor.required) below.push(`required ${s.required.passed} < floor ${floor.required}`);
  if (s.optimal.passed < floor.optimal) below.push(`optional ${s.optimal.passed} < floor ${floor.optimal}`);
  if (below.length > 0) {
    console.error(`conformance: below conformance-floor.json: ${below.join(', ')}`);
    process.exit(1);
  }
  console.log(`conformance: at or above the floor (required ${floor.required}, optional ${floor.optimal})`);
}

await main();
