/**
 * The operator's side of `stratacache` (issue 19), each through the bin as a child process:
 * upstream failures on stderr and in the access log, units required on durations and sizes,
 * `stratacache` alone serving the folder's config, `prime` from a sitemap file, `--redis`,
 * `--compress`, and one startup line naming every tier and the admin listener.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { run } from '../../src/cli.js';
import { runCli, serveCli, startCli, type Exited } from '../helpers/bin.js';
import { closedAfterFile, listen, request, type Running } from '../helpers/http.js';
import { NO_REDIS, startRedis } from '../helpers/redis.js';

const tracked = closedAfterFile();
const tmp = (): string => mkdtempSync(join(tmpdir(), 'stratacache-ops-'));

/** An upstream answering every path with a cacheable page naming it, counting renders. */
async function upstream(): Promise<Running & { renders: Map<string, number> }> {
  const renders = new Map<string, number>();
  const running = await listen((req, res) => {
    const path = req.url ?? '/';
    renders.set(path, (renders.get(path) ?? 0) + 1);
    res.writeHead(200, { 'content-type': 'text/html', 'cache-control': 'max-age=600' });
    res.end(`<p>${path} #${renders.get(path)} ${'filler '.repeat(200)}</p>`);
  });
  tracked.servers.push(running);
  return Object.assign(running, { renders });
}

/** A port nothing listens on (just released). */
async function freePort(): Promise<number> {
  const l = await listen(() => {});
  await l.close();
  return l.port;
}

/** An upstream that takes requests and never answers them. */
async function hangingUpstream(): Promise<string> {
  const running = await listen(() => {});
  tracked.servers.push(running);
  return running.url;
}

/** Runs the bin's entry point in this process (for mistakes: nothing starts), as the bin reports it. */
async function runInProcess(argv: string[], cwd = process.cwd()): Promise<Exited> {
  let stdout = '';
  let stderr = '';
  const io = { out: (t: string) => void (stdout += `${t}\n`), err: (t: string) => void (stderr += `${t}\n`), raw: () => {}, tty: false, env: {}, cwd, onSignal: () => {} };
  const code = await run(argv, io);
  return { code, stdout, stderr };
}

/** Asserts a failed run: exit 1, exactly one line on stderr, matching `pattern`, no stack. */
function assertOneLine(r: Exited, pattern: RegExp, label: string): void {
  assert.equal(r.code, 1, `${label}: ${r.stderr}`);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `${label} printed more than one line: ${r.stderr}`);
  assert.match(lines[0]!, pattern, label);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
}

describe('upstream failures: an error log on stderr (without DEBUG) and the cause in the access log', () => {
  test('an unreachable upstream and one that times out: one [error] line per cause, each request logged with its cause', async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    const hanging = await hangingUpstream();
    const [a, b] = await Promise.all([serveCli(['--upstream', dead, '--access-log']), serveCli(['--upstream', hanging, '--upstream-timeout', '300ms', '--access-log', 'json'])]);
    for (const path of ['/one', '/two', '/three']) {
      assert.equal((await request(`${a.url}${path}`)).status, 502);
      assert.equal((await request(`${b.url}${path}`)).status, 504);
    }
    await a.waitFor(/"GET \/three HTTP\/1\.1" 502/);
    await b.waitFor(/"path":"\/three","status":504/);
    const refused = a.output().stderr.split('\n').filter((l) => l.includes('[error]'));
    assert.equal(refused.length, 1, a.output().stderr);
    assert.match(refused[0]!, new RegExp(`^\\d{4}/\\d\\d/\\d\\d \\d\\d:\\d\\d:\\d\\d \\[error\\] upstream connect ECONNREFUSED 127\\.0\\.0\\.1:\\d+ \\(answered 502\\), upstream: "${dead}/one", request: "GET /one"$`));
    const timedOut = b.output().stderr.split('\n').filter((l) => l.includes('[error]'));
    assert.equal(timedOut.length, 1, b.output().stderr);
    assert.match(timedOut[0]!, new RegExp(`\\[error\\] upstream timed out \\(no response headers within 300 ms\\) \\(answered 504\\), upstream: "${hanging}/one", request: "GET /one"$`));
    // Every request's access log line carries its cause.
    assert.equal(a.output().stdout.match(/" 502 \d+ \S+ \d+ms upstream-error="connect ECONNREFUSED 127\.0\.0\.1:\d+"$/gm)?.length, 3, a.output().stdout);
    const json = b.output().stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { status: number; upstreamError?: string });
    assert.deepEqual(json.map((l) => [l.status, l.upstreamError]), Array(3).fill([504, 'timed out (no response headers within 300 ms)']));
    for (const s of [a, b]) s.child.kill('SIGTERM');
    for (const s of [a, b]) assert.equal((await s.exited).code, 0);
  });
});

describe('durations and sizes need a unit', () => {
  test('each bad form of each duration and size flag or config value: exit 1, one line naming it and the units', async () => {
    const up = await upstream();
    const duration = /a duration with a unit: ms, s, m, h or d \(500ms, 10s, 5m, 1h\)/;
    const size = /a size with a unit: b, kb, mb or gb \(64mb, 512kb, 1gb\)/;
    const json = (value: Record<string, unknown>): string => {
      const dir = tmp();
      writeFileSync(join(dir, 'stratacache.config.json'), JSON.stringify({ upstream: up.url, port: 0, ...value }));
      return dir;
    };
    const cases: Array<[string[], RegExp, string?]> = [
      [['--grace', '10'], /expected --grace to be a duration with a unit: .*, got '10' \(a bare number has no unit\)/],
      [['--grace', '10x'], /expected --grace to be a duration .*, got '10x'$/],
      [['--grace', 'soon'], /expected --grace to be a duration .*, got 'soon'$/],
      [['--default-ttl', '300'], /expected --default-ttl to be a duration .*got '300' \(a bare number/],
      [['--max-ttl', '1.5'], /expected --max-ttl to be a duration .*got '1\.5' \(a bare number/],
      [['--stale-if-error', '60'], /expected --stale-if-error to be a duration/],
      [['--stale-while-revalidate', '5'], /expected --stale-while-revalidate to be a duration/],
      [['--upstream-timeout', '30'], /expected --upstream-timeout to be a duration/],
      [['--drain-timeout', '10'], /expected --drain-timeout to be a duration/],
      [['--max-size', '64'], /expected --max-size to be a size with a unit: .*got '64' \(a bare number has no unit\)/],
      [['--max-size', '64 potatoes'], /expected --max-size to be a size .*got '64 potatoes'$/],
      [['--max-entry-size', '8m b'], /expected --max-entry-size to be a size/],
      [['--disk', tmp(), '--disk-size', '1024'], /expected --disk-size to be a size .*got '1024' \(a bare number/],
      [[], /stratacache\.config\.json: expected config\.gracePeriod to be a duration with a unit: .*, got 10 \(a bare number has no unit\)/, json({ gracePeriod: 10 })],
      [[], /expected config\.peers\.coolDown to be a duration .*got 5 \(a bare number/, json({ peers: { coolDown: 5 } })],
      [[], /expected config\.maxSize to be a size .*got 67108864 \(a bare number/, json({ maxSize: 67108864 })],
      [[], /expected config\.drainTimeout to be a duration .*got '10 seconds'/, json({ drainTimeout: '10 seconds' })],
      [[], /expected config\.redis\.commandTimeout to be a duration .*got 250 \(a bare number/, json({ redis: { url: 'redis://127.0.0.1:1', commandTimeout: 250 } })],
    ];
    // The first three forms (bare, unknown unit, no number) and a file's bare number as a user
    // runs them; the rest through the same entry point in this process (a machine of 2 cores
    // spawns a dozen TypeScript processes slowly).
    const spawned = new Set([0, 1, 2, 9, 13]);
    const results = await Promise.all(
      cases.map(([flags, , cwd], i) => {
        const argv = cwd === undefined ? ['serve', '--upstream', up.url, '--port', '0', ...flags] : [];
        return spawned.has(i) ? runCli(argv, cwd === undefined ? {} : { cwd }) : runInProcess(argv, cwd);
      }),
    );
    results.forEach((r, i) => {
      const [flags, pattern] = cases[i]!;
      assertOneLine(r, pattern, `case ${i} (${flags.join(' ')})`);
      assert.match(r.stderr, flags.some((f) => /size/.test(f)) || /size|maxSize/.test(pattern.source) ? size : duration);
    });
    const others = await Promise.all([runCli(['prime', 'urls.txt', '--url', up.url, '--timeout', '30']), runCli(['demo', '--render-time', '50'])]);
    assertOneLine(others[0]!, /expected --timeout to be a duration .*got '30' \(a bare number/, 'prime --timeout 30');
    assertOneLine(others[1]!, /expected --render-time to be a duration .*got '50' \(a bare number/, 'demo --render-time 50');
  });

  test('0 needs no unit, and units work in flags and files: the plan the server runs with', async () => {
    const up = await upstream();
    const dir = tmp();
    writeFileSync(join(dir, 'stratacache.config.json'), JSON.stringify({ upstream: up.url, defaultTtl: 0, maxSize: '16mb', gracePeriod: '1.5s' }));
    const s = await serveCli(['--stale-while-revalidate', '0', '--max-entry-size', '512kb'], { cwd: dir });
    assert.match(s.line, /listening on/);
    assert.match(s.output().stdout, /tiers: memory 16 MiB;/);
    s.child.kill('SIGTERM');
    await s.exited;
  });
});

describe('--help', () => {
  test('serve --help lists --redis and --compress and says units are needed; the usage says what stratacache alone does', async () => {
    const serve = await runInProcess(['serve', '--help']);
    assert.equal(serve.code, 0);
    assert.match(serve.stdout, /^ {2}--redis URL {17}add the tier shared by every node on this Redis or Valkey:$/m);
    assert.match(serve.stdout, /^ {2}--redis-cluster URL,URL,\.\.\. the same on a Redis \(or Valkey\) Cluster, from some of its nodes:$/m);
    assert.match(serve.stdout, /^ {2}--compress {18}compress text responses/m);
    assert.match(serve.stdout, /need a unit, in flags and files alike: 512kb, 64mb, 1gb; 500ms, 10s, 5m, 1h, 1d\n\(a bare number is refused, but 0\)/);
    const usage = await runInProcess(['--help']);
    assert.match(usage.stdout, /'stratacache' alone serves the stratacache\.config\.\* file of the folder/);
  });
});

describe('stratacache alone', () => {
  test('in a folder with a config file it serves it; elsewhere it prints the usage and exits 1', async () => {
    const up = await upstream();
    const dir = tmp();
    writeFileSync(join(dir, 'stratacache.config.json'), JSON.stringify({ upstream: up.url, port: 0 }));
    const s = startCli([], { cwd: dir });
    const url = (await s.waitFor(/listening on (http:\/\/[^/\s]+)\//))[1]!;
    assert.match(s.output().stdout, /; config .*stratacache\.config\.json/);
    assert.equal((await request(`${url}/alone`)).headers['x-cache'], 'MISS');
    assert.equal((await request(`${url}/alone`)).headers['x-cache'], 'HIT');
    s.child.kill('SIGTERM');
    assert.equal((await s.exited).code, 0);
    const empty = await runCli([], { cwd: tmp() });
    assert.equal(empty.code, 1);
    assert.match(empty.stdout, /usage: stratacache <command>/);
  });
});

describe('prime from a sitemap file', () => {
  test('a sitemap.xml and a sitemap index beside its sitemaps: every page primed, then a HIT under its own Host', async () => {
    const up = await upstream();
    const s = await serveCli(['--upstream', up.url]);
    const dir = tmp();
    const urlset = (locs: string[]): string => `<?xml version="1.0" encoding="UTF-8"?>\n<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n${locs.map((l) => `  <url><loc>${l}</loc><lastmod>2026-12-01</lastmod></url>`).join('\n')}\n</urlset>\n`;
    writeFileSync(join(dir, 'sitemap.xml'), urlset(['https://shop.example/a', 'https://shop.example/b?x=1&amp;y=2']));
    writeFileSync(join(dir, 'products.xml'), urlset(['https://shop.example/p/1', 'https://shop.example/p/2']));
    writeFileSync(join(dir, 'blog.xml'), urlset(['https://shop.example/blog/1']));
    writeFileSync(join(dir, 'index.xml'), `<?xml version="1.0"?>\n<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n  <sitemap><loc>products.xml</loc></sitemap>\n  <sitemap><loc>blog.xml</loc></sitemap>\n</sitemapindex>\n`);
    const plain = await runCli(['prime', 'sitemap.xml', '--url', s.url], { cwd: dir });
    assert.equal(plain.code, 0, plain.stderr);
    assert.match(plain.stdout, /primed 2 of 2 URL\(s\)/);
    const index = await runCli(['prime', join(dir, 'index.xml'), '--url', s.url]);
    assert.equal(index.code, 0, index.stderr);
    assert.match(index.stdout, /primed 3 of 3 URL\(s\)/);
    for (const path of ['/a', '/b?x=1&y=2', '/p/1', '/p/2', '/blog/1']) {
      assert.equal((await request(`${s.url}${path}`, { headers: { host: 'shop.example' } })).headers['x-cache'], 'HIT', path);
      assert.equal(up.renders.get(path), 1, path);
    }
    writeFileSync(join(dir, 'broken-index.xml'), `<?xml version="1.0"?><sitemapindex><sitemap><loc>missing.xml</loc></sitemap></sitemapindex>`);
    assertOneLine(await runCli(['prime', 'broken-index.xml', '--url', s.url], { cwd: dir }), /cannot read .*missing\.xml: ENOENT/, 'missing nested sitemap');
    s.child.kill('SIGTERM');
    await s.exited;
  });
});

describe('--compress', () => {
  test('compresses for a client that accepts gzip, made once and served from the store; the startup line says so', async () => {
    const up = await upstream();
    const s = await serveCli(['--upstream', up.url, '--compress']);
    assert.match(s.output().stdout, /; compress br, (zstd, )?gzip;/);
    const first = await request(`${s.url}/z`, { headers: { 'accept-encoding': 'gzip' } });
    // The compressed variants are made in the background after the entry is stored.
    let second = await request(`${s.url}/z`, { headers: { 'accept-encoding': 'gzip' } });
    for (let i = 0; i < 100 && second.headers['content-encoding'] !== 'gzip'; i++) {
      await new Promise((r) => setTimeout(r, 50));
      second = await request(`${s.url}/z`, { headers: { 'accept-encoding': 'gzip' } });
    }
    assert.equal(second.headers['content-encoding'], 'gzip');
    assert.equal(second.headers['x-cache'], 'HIT');
    assert.match(gunzipSync(second.raw).toString(), /^<p>\/z #1 filler/);
    assert.ok(second.raw.length < 400, `gzip body of ${second.raw.length} bytes`);
    assert.equal(first.status, 200);
    assert.equal(up.renders.get('/z'), 1);
    s.child.kill('SIGTERM');
    await s.exited;
  });

  test('bad forms: a value given to --compress, a bad compress config field', async () => {
    const up = await upstream();
    const dir = tmp();
    writeFileSync(join(dir, 'stratacache.config.json'), JSON.stringify({ upstream: up.url, compress: { encodings: ['lzma'] } }));
    const [valued, badFile] = await Promise.all([runCli(['serve', '--upstream', up.url, '--compress=yes']), runCli(['serve'], { cwd: dir })]);
    assertOneLine(valued!, /Option '--compress' does not take an argument/, '--compress=yes');
    assertOneLine(badFile!, /stratacache\.config\.json: expected options\.compress\.encodings\[0\] to be 'br', 'gzip' or 'zstd', got 'lzma'/, 'compress.encodings');
  });
});

describe('--redis', () => {
  test('bad forms: not a redis URL (flag or config), no value, a client in a config, a server and a cluster at once', async () => {
    const up = await upstream();
    const dir = (redis: unknown): string => {
      const d = tmp();
      writeFileSync(join(d, 'stratacache.config.json'), JSON.stringify({ upstream: up.url, redis }));
      return d;
    };
    const results = await Promise.all([
      runCli(['serve', '--upstream', up.url, '--redis', 'http://127.0.0.1:6379']),
      runInProcess(['serve', '--upstream', up.url, '--redis', 'localhost']),
      runCli(['serve', '--upstream', up.url, '--redis']),
      runCli(['serve'], { cwd: dir('127.0.0.1:6379') }),
      runInProcess(['serve'], dir({ prefix: 'x:' })),
      runInProcess(['serve'], dir(42)),
      runInProcess(['serve'], dir({ url: 'redis://127.0.0.1:1', nope: true })),
      runInProcess(['serve', '--upstream', up.url, '--redis', 'redis://a:1', '--redis-cluster', 'redis://b:1']),
      runInProcess(['serve', '--upstream', up.url, '--redis-cluster', 'redis://a:7000,b:7001']),
      runInProcess(['serve'], dir({ cluster: ['redis://a:7000', 'b:7001'] })),
      runInProcess(['serve'], dir({ cluster: [] })),
      runInProcess(['serve'], dir({ url: 'redis://a:1', cluster: ['redis://a:7000'] })),
    ]);
    const expected = [
      /expected --redis to be a redis:\/\/ or rediss:\/\/ URL, got 'http:\/\/127\.0\.0\.1:6379'/,
      /expected --redis to be a redis:\/\/ or rediss:\/\/ URL, got 'localhost'/,
      /Option '--redis <value>' argument missing/,
      /stratacache\.config\.json: expected config\.redis to be a redis:\/\/ or rediss:\/\/ URL, got '127\.0\.0\.1:6379'/,
      /stratacache\.config\.json: expected config\.redis\.url to be a redis:\/\/ or rediss:\/\/ URL, got undefined/,
      /stratacache\.config\.json: expected config\.redis to be a redis:\/\/ URL or an object of Redis store options, got 42/,
      /redis: unknown option options\.nope/,
      /give --redis \(one server\) or --redis-cluster \(a cluster's nodes\), not both/,
      /expected --redis-cluster to list redis:\/\/ or rediss:\/\/ URLs, got 'b:7001'/,
      /stratacache\.config\.json: expected config\.redis\.cluster\[1\] to be a redis:\/\/ or rediss:\/\/ URL, got 'b:7001'/,
      /stratacache\.config\.json: expected config\.redis\.cluster to list redis:\/\/ URLs, got \[\]/,
      /config\.redis: give url \(one server\) or cluster \(a cluster's nodes\), not both/,
    ];
    results.forEach((r, i) => assertOneLine(r, expected[i]!, `case ${i}`));
  });

  test('two nodes on one Redis share pages; the startup line lists memory, disk, redis, peers and admin', async (t) => {
    const redis = await startRedis();
    if (redis === undefined) return t.skip(NO_REDIS);
    const up = await upstream();
    const dir = tmp();
    // One node by flags (every tier), the other by its config file's redis key.
    writeFileSync(join(dir, 'stratacache.config.json'), JSON.stringify({ upstream: up.url, port: 0, redis: { url: redis.url, commandTimeout: '500ms' } }));
    const self = `http://127.0.0.1:${await freePort()}`;
    const env = { STRATACACHE_PEER_SECRET: 'a-test-secret-of-enough-length' };
    const a = await serveCli(['--upstream', up.url, '--disk', join(tmp(), 'disk'), '--redis', redis.url, '--peers', `${self},http://127.0.0.1:1`, '--self', self, '--admin', '127.0.0.1:0'], { env });
    const b = startCli([], { cwd: dir });
    const bUrl = (await b.waitFor(/listening on (http:\/\/[^/\s]+)\//))[1]!;
    assert.match(
      a.output().stdout.split('\n')[0]!,
      new RegExp(`tiers: memory 64 MiB, disk \\S+ 1 GiB, redis redis://127\\.0\\.0\\.1:${redis.port}; peers: http://127\\.0\\.0\\.1:1 \\(self ${self}, all\\); admin http://127\\.0\\.0\\.1:\\d+/`),
    );
    assert.match(b.output().stdout, new RegExp(`tiers: memory 64 MiB, redis redis://127\\.0\\.0\\.1:${redis.port}; peers: none; admin: none`));
    const host = { host: 'site.example' };
    assert.equal((await request(`${a.url}/shared`, { headers: host })).headers['x-cache'], 'MISS');
    // The write to Redis follows the response: wait until Redis holds the entry.
    const client = new Redis(redis.url);
    t.after(() => client.disconnect());
    for (let i = 0; i < 100 && (await client.keys('stratacache:e:*')).length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal((await request(`${bUrl}/shared`, { headers: host })).headers['x-cache'], 'HIT');
    assert.equal(up.renders.get('/shared'), 1);
    for (const s of [a, b]) s.child.kill('SIGTERM');
    for (const s of [a, b]) assert.equal((await s.exited).code, 0);
  });
});
