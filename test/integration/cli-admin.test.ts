/**
 * `stratacache serve --admin`: the bin as a child process serves /metrics and the operator
 * console on its admin address, apart from the proxied site, and stops both on SIGTERM.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';
import { parseAdmin } from '../../src/cli/admin.js';
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
