/**
 * The `stratacache` bin as a child process, as an operator runs it: serve (config files, flags,
 * startup line, access log, exit 1 with one line on mistakes, graceful drain on SIGTERM), flush,
 * prime (a file and a sitemap), stats, demo, and every command's --help.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { buildServePlan } from '../../src/cli/config.js';
import { runPrime } from '../../src/cli/prime.js';
import { createCache, createProxy } from '../../src/index.js';
import { CLI, TSX, runCli, serveCli } from '../helpers/bin.js';
import { closedAfterFile, listen, request, type Running } from '../helpers/http.js';

const tracked = closedAfterFile();
const run = runCli;
const serve = serveCli;

/** An upstream counting renders per path; `/slow` answers after `slowMs`. */
async function upstream(slowMs = 1_000): Promise<Running & { renders: Map<string, number>; arrived: Set<string> }> {
  const renders = new Map<string, number>();
  const arrived = new Set<string>();
  const running = await listen((req, res) => {
    const path = req.url ?? '/';
    arrived.add(path);
    renders.set(path, (renders.get(path) ?? 0) + 1);
    if (path === '/sitemap.xml') {
      res.writeHead(200, { 'content-type': 'application/xml' });
      return void res.end(`<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>http://shop.example/s/1</loc></url><url><loc>http://shop.example/s/2?x=1&amp;y=2</loc></url></urlset>`);
    }
    const body = `<p>${path} #${renders.get(path)}</p>`;
    const answer = (): void => {
      if (path.startsWith('/plain')) res.writeHead(200, { 'content-type': 'text/html' });
      else if (path.startsWith('/dated')) res.writeHead(200, { 'content-type': 'text/html', 'last-modified': new Date(Date.now() - 10 * 86_400_000).toUTCString() });
      else res.writeHead(200, { 'content-type': 'text/html', 'cache-control': 'max-age=600' });
      res.end(body);
    };
    if (path === '/slow') setTimeout(answer, slowMs);
    else answer();
  });
  tracked.servers.push(running);
  return Object.assign(running, { renders, arrived });
}

/** A port nothing listens on (just released). */
async function freePort(): Promise<number> {
  const l = await listen(() => {});
  await l.close();
  return l.port;
}

/** A cache node in this process in front of `up` (for the client commands). */
async function node(upUrl: string, options: Parameters<typeof createCache>[0] = {}): Promise<Running> {
  const cache = createCache(options);
  const running = await listen(cache.wrap(createProxy({ upstream: upUrl })));
  tracked.servers.push(running);
  tracked.caches.push(cache);
  return running;
}

describe('stratacache --help, --version and every command\'s --help', () => {
  test('each prints its usage and exits 0; an unknown command exits 1 with one line', async () => {
    const results = await Promise.all([['--help'], ['-h'], ['--version'], ...['serve', 'flush', 'prime', 'stats', 'demo'].map((c) => [c, '--help']), ['frobnicate']].map((a) => run(a)));
    const [help, h, version, serveHelp, flushHelp, primeHelp, statsHelp, demoHelp, unknown] = results;
    for (const r of results.slice(0, 8)) assert.equal(r!.code, 0, r!.stderr);
    assert.match(help!.stdout, /usage: stratacache <command>[\s\S]*serve[\s\S]*flush[\s\S]*prime[\s\S]*stats[\s\S]*demo/);
    assert.equal(h!.stdout, help!.stdout);
    assert.match(version!.stdout, /^\d+\.\d+\.\d+\n$/);
    assert.match(serveHelp!.stdout, /usage: stratacache serve --upstream URL[\s\S]*--config FILE[\s\S]*--drain-timeout/);
    assert.match(flushHelp!.stdout, /usage: stratacache flush <path\.\.\.>/);
    assert.match(primeHelp!.stdout, /usage: stratacache prime <file-of-URLs \| sitemap\.xml \| sitemap URL>/);
    assert.match(statsHelp!.stdout, /usage: stratacache stats --url NODE/);
    assert.match(demoHelp!.stdout, /usage: stratacache demo/);
    assert.equal(unknown!.code, 1);
    assert.equal(unknown!.stderr.trim().split('\n').length, 1);
    assert.match(unknown!.stderr, /unknown command 'frobnicate'/);
  });
});

describe('serve options (plan, no process)', () => {
  test('flags over the file, units, the proxy defaults (no default TTL, CDN-Cache-Control obeyed)', () => {
    const plan = buildServePlan({ upstream: 'http://127.0.0.1:8080', maxSize: '16mb', gracePeriod: '2s', peers: { coolDown: '5s' } }, { 'max-size': '8mb', port: '0' }, { env: {} });
    assert.equal(plan.cache.maxSize, 8 * 1024 * 1024);
    assert.equal(plan.cache.gracePeriod, 2_000);
    assert.deepEqual(plan.cache.peers, { coolDown: 5_000 });
    assert.equal(plan.cache.defaultTtl, 0);
    assert.deepEqual(plan.cache.targetedCacheControl, ['cdn-cache-control']);
    const off = buildServePlan({}, { upstream: 'http://x', 'targeted-cache-control': '' }, { env: {} });
    assert.deepEqual(off.cache.targetedCacheControl, []);
    assert.throws(() => buildServePlan({}, { upstream: 'http://x', peers: 'http://a,http://b' }, { env: {} }), /peers need a shared secret: set the environment variable STRATACACHE_PEER_SECRET/);
  });
});

describe('stratacache serve', () => {
  test('a caching reverse proxy: startup line, miss then hit, no default TTL, heuristic by flag, access log', async () => {
    const up = await upstream();
    const s = await serve(['--upstream', up.url, '--heuristic-freshness', '0.1', '--access-log', '--max-size', '32mb']);
    assert.match(s.line, /listening on http:\/\/127\.0\.0\.1:\d+\//);
    const startup = s.output().stdout.split('\n')[0]!;
    assert.match(startup, new RegExp(`-> ${up.url.replace(/[.]/g, '\\.')}; tiers: memory 32 MiB; peers: none`));
    assert.equal((await request(`${s.url}/cli`)).headers['x-cache'], 'MISS');
    const hit = await request(`${s.url}/cli`);
    assert.equal(hit.headers['x-cache'], 'HIT');
    assert.equal(hit.body, '<p>/cli #1</p>');
    // Nothing says how long /plain stays fresh: not stored.
    assert.equal((await request(`${s.url}/plain`)).headers['x-cache'], 'MISS');
    assert.notEqual((await request(`${s.url}/plain`)).headers['x-cache'], 'HIT');
    assert.equal(up.renders.get('/plain'), 2);
    // Last-Modified ten days ago: fresh for a day by the 10 % heuristic.
    await request(`${s.url}/dated`);
    assert.equal((await request(`${s.url}/dated`)).headers['x-cache'], 'HIT');
    // One access log line per request: method, path, status, bytes, cache status, ms.
    await s.waitFor(/"GET \/dated HTTP\/1\.1" 200 \d+ HIT \d+ms/);
    assert.match(s.output().stdout, /127\.0\.0\.1 - - \[\d\d\/\w{3}\/\d{4}:\d\d:\d\d:\d\d \+0000\] "GET \/cli HTTP\/1\.1" 200 14 MISS \d+ms/);
    s.child.kill('SIGTERM');
    assert.equal((await s.exited).code, 0);
  });

  test('every option from a config file (JSON, with units), flags winning; an .mjs config too', async () => {
    const up = await upstream();
    const dir = mkdtempSync(join(tmpdir(), 'stratacache-config-'));
    writeFileSync(join(dir, 'stratacache.config.json'), JSON.stringify({ upstream: up.url, maxSize: '16mb', gracePeriod: '2s', accessLog: 'json', ignoreUrlParams: ['utm_*'], flush: { token: 'file-token-123' }, adminOnMain: true }));
    const s = await serve(['--max-size', '8mb'], { cwd: dir });
    assert.match(s.output().stdout, /tiers: memory 8 MiB; peers: none; admin: none \(--admin to serve metrics and the console\); config .*stratacache\.config\.json/);
    await request(`${s.url}/page?utm_source=x`);
    assert.equal((await request(`${s.url}/page`)).headers['x-cache'], 'HIT');
    const line = JSON.parse((await s.waitFor(/\{"time"[^\n]*"cache":"HIT"[^\n]*\}/))[0]) as Record<string, unknown>;
    assert.equal(line.method, 'GET');
    assert.equal(line.path, '/page');
    assert.equal(line.status, 200);
    assert.equal(typeof line.ms, 'number');
    // The token from the file guards the stats endpoint (served on the site by adminOnMain).
    assert.equal((await request(`${s.url}/_stratacache/stats`)).status, 403);
    assert.equal((await request(`${s.url}/_stratacache/stats`, { headers: { authorization: 'Bearer file-token-123' } })).status, 200);
    s.child.kill('SIGTERM');
    await s.exited;

    const mjs = mkdtempSync(join(tmpdir(), 'stratacache-config-'));
    writeFileSync(join(mjs, 'stratacache.config.mjs'), `export default { upstream: ${JSON.stringify(up.url)}, key: { host: 'site.example' }, bypass: (req) => req.url.startsWith('/live') };\n`);
    const m = await serve([], { cwd: mjs });
    await request(`${m.url}/a`, { headers: { host: 'one.example' } });
    assert.equal((await request(`${m.url}/a`, { headers: { host: 'two.example' } })).headers['x-cache'], 'HIT');
    assert.equal((await request(`${m.url}/live`)).headers['x-cache'], 'PASS');
    m.child.kill('SIGTERM');
    await m.exited;
  });

  test('mistakes exit 1 with one line naming the field and value: bad JSON, bad .mjs field, bad flag, port out of range, port in use', async () => {
    const up = await upstream();
    const badJson = mkdtempSync(join(tmpdir(), 'stratacache-config-'));
    writeFileSync(join(badJson, 'stratacache.config.json'), '{ "upstream": "http://x", }');
    const badMjs = mkdtempSync(join(tmpdir(), 'stratacache-config-'));
    writeFileSync(join(badMjs, 'stratacache.config.mjs'), `export default { upstream: ${JSON.stringify(up.url)}, maxSize: 'lots' };\n`);
    const badOption = mkdtempSync(join(tmpdir(), 'stratacache-config-'));
    writeFileSync(join(badOption, 'settings.json'), JSON.stringify({ upstream: up.url, statLevel: -1 }));
    const taken = await listen(() => {});
    tracked.servers.push(taken);
    const results = await Promise.all([
      run(['serve'], { cwd: badJson }),
      run(['serve'], { cwd: badMjs }),
      run(['serve', '--config', 'settings.json'], { cwd: badOption }),
      run(['serve', '--upstream', up.url, '--port', '99999']),
      run(['serve', '--upstream', up.url, '--max-size', '64 potatoes']),
      run(['serve', '--upstream', up.url, '--port', String(taken.port)]),
      run(['serve', '--port', '0']),
      run(['serve', '--upstream', up.url, '--nope']),
    ]);
    const expected = [
      /stratacache\.config\.json: not valid JSON/,
      /stratacache\.config\.mjs: expected config\.maxSize to be a size with a unit: b, kb, mb or gb \(64mb, 512kb, 1gb\), got 'lots'/,
      /settings\.json: expected options\.statLevel to be a non-negative integer, got -1/,
      /expected --port to be an integer from 0 to 65535, got '99999'/,
      /expected --max-size to be a size with a unit: b, kb, mb or gb \(64mb, 512kb, 1gb\), got '64 potatoes'/,
      new RegExp(`port ${taken.port} on 127\\.0\\.0\\.1 is already in use`),
      /--upstream is required/,
      /Unknown option '--nope'/,
    ];
    results.forEach((r, i) => {
      assert.equal(r.code, 1, `case ${i}: ${r.stderr}`);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, `case ${i} printed more than one line: ${r.stderr}`);
      assert.match(lines[0]!, expected[i]!);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
    });
  });

  test('SIGTERM during a slow request: it completes with 200, new connections are refused, then the process exits 0', async () => {
    const up = await upstream(1_500);
    const s = await serve(['--upstream', up.url, '--drain-timeout', '10s']);
    const slow = request(`${s.url}/slow`);
    for (let i = 0; i < 200 && !up.arrived.has('/slow'); i++) await new Promise((r) => setTimeout(r, 20));
    assert.ok(up.arrived.has('/slow'), 'the slow request reached the upstream');
    s.child.kill('SIGTERM');
    const exit = s.exited;
    const reply = await slow;
    assert.equal(reply.status, 200);
    assert.equal(reply.body, '<p>/slow #1</p>');
    const { code, stderr } = await exit;
    assert.equal(code, 0);
    assert.match(stderr, /SIGTERM: no new connections; waiting for 1 in-flight request/);
    await assert.rejects(request(`${s.url}/after`), /ECONNREFUSED/);
  });
});

describe('stratacache serve: drain timeout', () => {
  test('a request still running when the drain timeout passes is cut, and the process still exits 0', async () => {
    const up = await upstream(5_000);
    const s = await serve(['--upstream', up.url, '--drain-timeout', '300ms']);
    const slow = request(`${s.url}/slow`).then(() => 'answered', () => 'cut');
    for (let i = 0; i < 200 && !up.arrived.has('/slow'); i++) await new Promise((r) => setTimeout(r, 20));
    const killed = Date.now();
    s.child.kill('SIGTERM');
    const { code, stderr } = await s.exited;
    assert.equal(code, 0);
    assert.ok(Date.now() - killed < 10_000);
    assert.match(stderr, /drain timeout: closing 1 unfinished request/);
    assert.equal(await slow, 'cut');
  });
});

describe('stratacache flush, prime and stats against a node', () => {
  test('flush prints what the node answered; refused without the token (exit 1)', async () => {
    const up = await upstream();
    const n = await node(up.url, { flush: { token: 'flush-token-42' } });
    await request(`${n.url}/news`);
    assert.equal((await request(`${n.url}/news`)).headers['x-cache'], 'HIT');
    const refused = await run(['flush', '/news', '--url', n.url]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /refused the flush: 403/);
    const ok = await run(['flush', '/news', '--refetch', '/news', '--url', n.url], { env: { STRATACACHE_FLUSH_TOKEN: 'flush-token-42' } });
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /200 OK: invalidated \/news; 1 refetch\(es\) queued \(invalidation #\d+\)/);
    for (let i = 0; i < 100 && up.renders.get('/news') !== 2; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(up.renders.get('/news'), 2);
    assert.equal((await request(`${n.url}/news`)).body, '<p>/news #2</p>');
  });

  test('prime on a terminal draws a progress bar (in process, with a TTY io)', async () => {
    const up = await upstream();
    const n = await node(up.url);
    const dir = mkdtempSync(join(tmpdir(), 'stratacache-prime-'));
    writeFileSync(join(dir, 'urls.txt'), '/t/1\n/t/2\n');
    let raw = '';
    const lines: string[] = [];
    const io = { out: (t: string) => void lines.push(t), err: (t: string) => void lines.push(t), raw: (t: string) => void (raw += t), tty: true, env: {}, cwd: dir, onSignal: () => {} };
    assert.equal(await runPrime(['urls.txt', '--url', n.url], io), 0);
    assert.match(raw, /\r\[#{30}\] 2\/2  0 failed  28 B  \d+\.\ds /);
    assert.match(lines.at(-1)!, /primed 2 of 2 URL\(s\)/);
  });

  test('flush --tag invalidates the entries carrying a surrogate key', async () => {
    const up = await listen((req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=600', 'surrogate-key': req.url === '/tagged' ? 'product-7' : 'other' });
      res.end(`${req.url}`);
    });
    tracked.servers.push(up);
    const n = await node(up.url);
    for (const p of ['/tagged', '/untagged']) await request(`${n.url}${p}`);
    const r = await run(['flush', '--tag', 'product-7', '--url', n.url]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /200 OK: tags product-7/);
    // Invalidated, not deleted: served stale during the grace period while it refreshes.
    assert.equal((await request(`${n.url}/tagged`)).headers['x-cache'], 'STALE');
    assert.equal((await request(`${n.url}/untagged`)).headers['x-cache'], 'HIT');
  });

  test('prime from a file and from a sitemap: summary, then every URL is a hit', async () => {
    const up = await upstream();
    const n = await node(up.url);
    const dir = mkdtempSync(join(tmpdir(), 'stratacache-prime-'));
    writeFileSync(join(dir, 'urls.txt'), '# pages\n/p/1\n/p/2\n\n/p/3\n');
    const fromFile = await run(['prime', 'urls.txt', '--url', n.url, '--concurrency', '2'], { cwd: dir });
    assert.equal(fromFile.code, 0, fromFile.stderr);
    assert.match(fromFile.stdout, /primed 3 of 3 URL\(s\) on http:\/\/127\.0\.0\.1:\d+: 3 done, 0 failed, 42 B in \d+\.\d s/);
    // Not a terminal: plain lines, no progress bar.
    assert.doesNotMatch(fromFile.stdout, /\r|\[#/);
    for (const p of ['/p/1', '/p/2', '/p/3']) assert.equal((await request(`${n.url}${p}`)).headers['x-cache'], 'HIT');

    const fromSitemap = await run(['prime', `${up.url}/sitemap.xml`, '--url', n.url]);
    assert.equal(fromSitemap.code, 0, fromSitemap.stderr);
    assert.match(fromSitemap.stdout, /primed 2 of 2 URL\(s\)/);
    // Cached under the sitemap's host, as its clients will ask.
    assert.equal((await request(`${n.url}/s/1`, { headers: { host: 'shop.example' } })).headers['x-cache'], 'HIT');
    assert.equal((await request(`${n.url}/s/2?x=1&y=2`, { headers: { host: 'shop.example' } })).headers['x-cache'], 'HIT');

    const missing = await run(['prime', 'nope.txt', '--url', n.url], { cwd: dir });
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /cannot read nope\.txt: ENOENT/);
  });

  test('stats prints a readable table, and the JSON with --json', async () => {
    const up = await upstream();
    const n = await node(up.url);
    await request(`${n.url}/a`);
    await request(`${n.url}/a`);
    await request(`${n.url}/a`);
    const table = await run(['stats', '--url', n.url]);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /hit ratio\s+66\.7 %\s+\(2 hits, 0 stale, 0 from peers\)/);
    assert.match(table.stdout, /renders saved\s+2/);
    assert.match(table.stdout, /entries\s+1 /);
    assert.match(table.stdout, /peers\s+none/);
    const json = await run(['stats', '--url', n.url, '--json']);
    assert.equal((JSON.parse(json.stdout) as { stats: { gets: number } }).stats.gets, 3);
  });
});

describe('stratacache demo', () => {
  test('plays traffic, a flush with refetch and an outage on 3 nodes, says what happened in numbers, stops everything', async () => {
    const started = Date.now();
    const r = await run(['demo', '--render-time', '50ms', '--requests', '240']);
    assert.equal(r.code, 0, r.stderr);
    const out = r.stdout;
    assert.match(out, /node3: http:\/\/127\.0\.0\.1:\d+/);
    const saved = /origin renders: (\d+) for 240 requests, so (\d+) renders saved/.exec(out);
    assert.ok(saved, out);
    assert.ok(Number(saved[1]) < 240 && Number(saved[1]) >= 30);
    assert.match(out, /coalesced: \d+ requests waited/);
    assert.match(out, /peer hits: \d+ requests were answered/);
    assert.match(out, /renders caused by the flush: \d+ for 3 nodes/);
    assert.match(out, /every one got the new version/);
    // During the outage no error reached a client: every answer was the stale copy.
    assert.match(out, /(\d+) requests: \1 answered 200 \(\1 with the stale copy\), 0 errors reached a client/);
    assert.match(out, /stale answers during the outage: [1-9]\d*/);
    assert.match(out, /Stopped the 3 nodes, the render app and the API after \d+\.\d s\./);
    assert.ok(Date.now() - started < 60_000);
  });
});


describe('stratacache serve: shipped config examples and process supervision', () => {
  test('examples/reverse-proxy/stratacache.config.json runs as given (ports and upstream overridden by flags)', async () => {
    const up = await upstream();
    const cwd = mkdtempSync(join(tmpdir(), 'stratacache-rp-'));
    const config = fileURLToPath(new URL('../../examples/reverse-proxy/stratacache.config.json', import.meta.url));
    const s = await serve(['--config', config, '--upstream', up.url], { cwd });
    assert.match(s.output().stdout, /tiers: memory 256 MiB, disk \.stratacache\/disk 1 GiB; peers: none/);
    await request(`${s.url}/products?utm_source=mail`);
    const hit = await request(`${s.url}/products`);
    assert.equal(hit.headers['x-cache'], 'HIT');
    await s.waitFor(/"GET \/products HTTP\/1\.1" 200 \d+ HIT/);
    s.child.kill('SIGTERM');
    assert.equal((await s.exited).code, 0);
  });

  test('examples/cluster-processes: three processes from the config files, each reached on its own port, answer each other as peers; a flush reaches all', async () => {
    const up = await upstream();
    const ports = await Promise.all([0, 1, 2].map(() => freePort()));
    const nodes = ports.map((p) => `http://127.0.0.1:${p}`);
    const dir = fileURLToPath(new URL('../../examples/cluster-processes/', import.meta.url));
    const env = { STRATACACHE_PEER_SECRET: 'a-test-secret-of-enough-length' };
    // The files name fixed ports (3101-3103) and an upstream on 8080: a test moves them by flags.
    const procs = await Promise.all(
      [1, 2, 3].map((n, i) => serve(['--config', join(dir, `node${n}.json`), '--upstream', up.url, '--port', String(ports[i]), '--self', nodes[i]!, '--peers', nodes.join(','), '--admin-on-main'], { env })),
    );
    assert.match(procs[0]!.output().stdout, /peers: http:\/\/127\.0\.0\.1:\d+, http:\/\/127\.0\.0\.1:\d+ \(self http:\/\/127\.0\.0\.1:\d+, all\)/);
    // Each node is asked under its own Host (127.0.0.1:port): the files' key.host makes them one site.
    const first = await request(`${procs[0]!.url}/shared`);
    assert.equal(first.headers['x-cache'], 'MISS');
    assert.equal((await request(`${procs[1]!.url}/shared`)).headers['x-cache'], 'PEER');
    assert.equal((await request(`${procs[2]!.url}/shared`)).headers['x-cache'], 'PEER');
    assert.equal(up.renders.get('/shared'), 1);
    // A flush on node 1 reaches the others: each serves its copy stale while it refreshes.
    const flushed = await run(['flush', '/shared', '--url', procs[0]!.url]);
    assert.equal(flushed.code, 0, flushed.stderr);
    for (const p of procs.slice(1)) {
      let status = 'PEER';
      for (let i = 0; i < 100 && status !== 'STALE'; i++) {
        status = String((await request(`${p.url}/shared`)).headers['x-cache']);
        if (status !== 'STALE') await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal(status, 'STALE', `${p.url} never saw the flush`);
    }
    // stats shows each peer's breaker.
    const table = await run(['stats', '--url', procs[0]!.url]);
    assert.match(table.stdout, /peer lookups\s+\d+/);
    assert.equal([...table.stdout.matchAll(/^peer\s+http:\/\/127\.0\.0\.1:\d+\s+closed$/gm)].length, 2, table.stdout);
    for (const p of procs) p.child.kill('SIGTERM');
    for (const p of procs) assert.equal((await p.exited).code, 0);
  });

  test('a wrapper that exits without passing SIGTERM on (as npx does): the server notices, drains and exits', async () => {
    const up = await upstream();
    const port = await freePort();
    // `; true` keeps sh as the parent instead of exec-ing node, like npm exec's shell.
    const wrapper = spawn('sh', ['-c', `"${process.execPath}" --import "${TSX}" "${CLI}" serve --upstream ${up.url} --port ${port}; true`], { stdio: 'ignore' });
    const url = `http://127.0.0.1:${port}`;
    let up200 = false;
    for (let i = 0; i < 150 && !up200; i++) {
      up200 = await request(`${url}/w`).then((r) => r.status === 200, () => false);
      if (!up200) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(up200, 'the server started');
    wrapper.kill('SIGKILL');
    let refused = false;
    for (let i = 0; i < 100 && !refused; i++) {
      await new Promise((r) => setTimeout(r, 100));
      refused = await request(`${url}/w`).then(() => false, (e: Error) => /ECONNREFUSED/.test(e.message));
    }
    assert.ok(refused, 'the orphaned server stopped listening');
  });
});
