/**
 * `stratacache serve --admin`: the bin as a child process serves /metrics and the operator
 * console on its admin address, apart from the proxied site, and stops both on SIGTERM.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';
import { isLoopbackAddress, parseAdmin, parseAdminOnMain, unguardedWarning } from '../../src/cli/admin.js';
import { serveCli } from '../helpers/cli.js';
import { closedAfterFile, listen, request } from '../helpers/http.js';

const CLI = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));
const TSX = import.meta.resolve('tsx');
const tracked = closedAfterFile();
const children = new Set<ReturnType<typeof spawn>>();
after(() => {
  for (const c of children) c.kill('SIGKILL');
});

test('--admin parses PORT, HOST:PORT and [IPv6]:PORT, and refuses anything else', () => {
  assert.deepEqual(parseAdmin('9000'), { host: '127.0.0.1', port: 9000 });
  assert.deepEqual(parseAdmin('0.0.0.0:9100'), { host: '0.0.0.0', port: 9100 });
  assert.deepEqual(parseAdmin('[::1]:9100'), { host: '::1', port: 9100 });
  assert.throws(() => parseAdmin('admin'), /expected --admin to be PORT or HOST:PORT, got "admin"/);
  assert.throws(() => parseAdmin('1:99999'), /expected --admin/);
});

test('serve --admin: /metrics counts the proxied traffic, the console answers behind the flush guard', { timeout: 60_000 }, async () => {
  const origin = await listen((_req, res) => {
    res.writeHead(200, { 'cache-control': 'public, max-age=60' });
    res.end('page');
  });
  tracked.servers.push(origin);
  const child = spawn(process.execPath, ['--import', TSX, CLI, 'serve', '--port', '0', '--upstream', origin.url, '--admin', '127.0.0.1:0', '--flush-token', 'admin-test-token-123'], {
    env: { ...process.env, DEBUG: '' },
  });
  children.add(child);
  let stdout = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const admin = await new Promise<{ site: string; admin: string }>((resolve, reject) => {
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
      const site = /listening on (http:\/\/[^/\s]+)\//.exec(stdout);
      const adm = /admin on (http:\/\/[^/\s]+)\//.exec(stdout);
      if (site !== null && adm !== null) resolve({ site: site[1]!, admin: adm[1]! });
    });
    setTimeout(() => reject(new Error(`no startup lines: ${stdout}`)), 30_000).unref();
  });
  for (let i = 0; i < 3; i++) await request(`${admin.site}/page`);
  const metrics = await request(`${admin.admin}/metrics`);
  assert.equal(metrics.status, 200);
  assert.match(metrics.body, /^stratacache_requests_total\{status="hit"\} 2$/m);
  assert.match(metrics.body, /^stratacache_requests_total\{status="miss"\} 1$/m);
  // The site's own /metrics is the upstream's, not the cache's.
  assert.equal((await request(`${admin.site}/metrics`)).body, 'page');
  assert.equal((await request(`${admin.admin}/console/`)).status, 401);
  const page = await request(`${admin.admin}/console/`, { headers: { authorization: `Basic ${Buffer.from('ops:admin-test-token-123').toString('base64')}` } });
  assert.equal(page.status, 200);
  assert.match(page.body, /stratacache console/);
  assert.equal((await request(`${admin.admin}/`)).headers.location, '/console/');
  child.kill('SIGTERM');
  assert.equal(await exited, 0);
});

test('the admin routes are served on --admin only: the site answers 404 for them and never forwards PURGE', { timeout: 60_000 }, async () => {
  const seen: string[] = [];
  const origin = await listen((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    res.writeHead(200, { 'cache-control': 'public, max-age=60' });
    res.end('page');
  });
  tracked.servers.push(origin);
  const s = await serveCli(['--upstream', origin.url, '--admin', '127.0.0.1:0']);
  assert.equal((await request(`${s.site}/a`)).headers['x-cache'], 'MISS');
  for (const [method, path] of [['PURGE', '/a'], ['GET', '/_stratacache/stats'], ['POST', '/dispatcher/invalidate.cache']] as const) {
    const r = await request(`${s.site}${path}`, { method, headers: { 'content-type': 'application/json' }, body: method === 'POST' ? '{"paths":["/a"]}' : undefined });
    assert.equal(r.status, 404, `${method} ${path}`);
    assert.match(r.body, /served on the --admin address \(--admin-on-main serves them here\)/);
  }
  assert.equal((await request(`${s.site}/a`)).headers['x-cache'], 'HIT');
  assert.deepEqual(seen, ['GET /a']);
  // On the admin address they work (direct loopback, no token configured: trusted, as documented).
  assert.equal((await request(`${s.admin!}/_stratacache/stats`)).status, 200);
  assert.match((await request(`${s.admin!}/a`, { method: 'PURGE' })).body, /^Purged \/a/);
  assert.equal((await request(`${s.site}/a`)).headers['x-cache'], 'MISS');
  assert.equal((await request(`${s.admin!}/nothing`)).status, 404);
  // Loopback listeners: no warning.
  assert.doesNotMatch(s.stderr(), /warning/);
  s.child.kill('SIGTERM');
  assert.equal(await s.exited, 0);

  const main = await serveCli(['--upstream', origin.url, '--admin-on-main']);
  assert.equal((await request(`${main.site}/_stratacache/stats`)).status, 200);
  assert.equal((await request(`${main.site}/_stratacache/stats`, { headers: { 'x-forwarded-for': '203.0.113.9' } })).status, 403);
  main.child.kill('SIGTERM');
  assert.equal(await main.exited, 0);
});

test('the startup warning: flushing reachable without a token on a listener that is not loopback', () => {
  assert.ok(isLoopbackAddress('127.0.0.1') && isLoopbackAddress('127.1.2.3') && isLoopbackAddress('::1') && isLoopbackAddress('[::1]') && isLoopbackAddress('localhost'));
  assert.ok(!isLoopbackAddress('0.0.0.0') && !isLoopbackAddress('::') && !isLoopbackAddress('10.0.0.5'));
  const open = [{ url: 'http://0.0.0.0:9000/', host: '0.0.0.0' }];
  assert.match(unguardedWarning(undefined, open) ?? '', /^stratacache: warning: flushing .* reachable without a token on http:\/\/0\.0\.0\.0:9000\/, which is not loopback.*--flush-token/);
  assert.equal(unguardedWarning('a-token', open), undefined);
  assert.equal(unguardedWarning(undefined, [{ url: 'http://127.0.0.1:9000/', host: '127.0.0.1' }]), undefined);
  assert.equal(unguardedWarning(undefined, []), undefined);
  assert.equal(parseAdminOnMain(true, undefined), true);
  assert.equal(parseAdminOnMain(undefined, true), true);
  assert.equal(parseAdminOnMain(undefined, undefined), false);
  assert.throws(() => parseAdminOnMain(undefined, 'yes'), /expected config\.adminOnMain to be true or false, got "yes"/);
});
