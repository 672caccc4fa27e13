/**
 * Discovery in the standalone proxy: the `--discover-*` flags and the config file's
 * `peers.discover` make the cache options (mistakes are one usage line naming the flag), and two
 * `stratacache serve` processes that find each other in a loopback DNS server answer each other
 * as peers.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { buildServePlan } from '../../src/cli/config.js';
import { UsageError } from '../../src/cli/units.js';
import { serveCli } from '../helpers/cli.js';
import { startDns } from '../helpers/dns.js';
import { freePort, listen, request } from '../helpers/http.js';
import { until } from '../helpers/origin.js';

const env = { STRATACACHE_PEER_SECRET: 'a-test-secret-of-enough-length' };
const base = { upstream: 'http://127.0.0.1:8080' };
const plan = (file: Record<string, unknown>, flags: Record<string, string | boolean>) => buildServePlan({ ...base, ...file }, { self: 'http://127.0.0.1:3101', ...flags }, { env });

describe('--discover-* flags and peers.discover in the config file', () => {
  test('flags make peers.discover; durations take units; the secret comes from the environment', () => {
    const dns = plan({}, { 'discover-dns': 'web.shop.svc.cluster.local', 'discover-port': '3000', 'discover-servers': '10.96.0.10, 127.0.0.1:5353', 'discover-interval': '2s' });
    assert.deepEqual(dns.cache.peers, {
      self: 'http://127.0.0.1:3101',
      secret: env.STRATACACHE_PEER_SECRET,
      discover: { dns: 'web.shop.svc.cluster.local', port: 3000, servers: ['10.96.0.10', '127.0.0.1:5353'], interval: 2000 },
    });
    const redis = plan({}, { redis: 'redis://127.0.0.1:6379', 'discover-redis': true, 'discover-ttl': '9s' });
    assert.deepEqual(redis.cache.peers?.discover, { redis: true, ttl: 9000 });
  });

  test('the file gives discovery, flags refine it', () => {
    const file = { peers: { discover: { dns: '_http._tcp.web', interval: '10s', timeout: '1s' } } };
    assert.deepEqual(plan(file, {}).cache.peers?.discover, { dns: '_http._tcp.web', interval: 10_000, timeout: 1000 });
    assert.deepEqual(plan(file, { 'discover-interval': '500ms' }).cache.peers?.discover, { dns: '_http._tcp.web', interval: 500, timeout: 1000 });
  });

  test('mistakes are one usage line naming the flag or option', () => {
    const refused = (file: Record<string, unknown>, flags: Record<string, string | boolean>, message: RegExp): void => {
      assert.throws(() => plan(file, flags), (e: Error) => e instanceof UsageError && message.test(e.message), String(message));
    };
    refused({}, { 'discover-dns': 'a.test', 'discover-redis': true }, /one of --discover-dns and --discover-redis/);
    refused({}, { 'discover-port': '3000' }, /need --discover-dns NAME or --discover-redis/);
    refused({}, { 'discover-dns': 'a.test', 'discover-port': 'http' }, /--discover-port to be an integer from 1 to 65535, got 'http'/);
    refused({}, { 'discover-dns': 'a.test', 'discover-interval': '5' }, /--discover-interval to be a duration/);
    refused({}, { 'discover-dns': 'a.test', 'discover-servers': 'dns.google' }, /options\.peers\.discover\.servers\[0\] to be an IP address.*got 'dns\.google'/);
    refused({}, { 'discover-redis': true }, /needs the Redis tier: --redis URL/);
    refused({}, { 'discover-dns': 'a.test', 'discover-ttl': '5s' }, /--discover-ttl is for --discover-redis/);
    refused({}, { 'discover-dns': 'a.test', peers: 'http://127.0.0.1:3102' }, /options\.peers\.nodes to be unset with options\.peers\.discover/);
    assert.throws(() => buildServePlan(base, { self: 'http://127.0.0.1:3101', 'discover-dns': 'a.test' }, { env: {} }), /peers need a shared secret/);
  });
});

describe('two serve processes finding each other in DNS', () => {
  test('SRV records list both: each becomes the other’s peer, a page rendered by one is a PEER answer on the other', async () => {
    const dns = await startDns();
    let renders = 0;
    const up = await listen((_req, res) => {
      renders++;
      res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=60' }).end('shared page');
    });
    after(() => up.close());
    const ports = await Promise.all([freePort(), freePort()]);
    dns.set(
      '_http._tcp.web.test',
      ports.map((port) => ({ type: 'SRV' as const, target: 'node.web.test', port })),
    );
    dns.set('node.web.test', [{ type: 'A', address: '127.0.0.1' }]);
    // A generous peer timeout: a process's first lookup (a new connection, code not yet warm) may
    // take longer than the default 50 ms on a loaded machine.
    const dir = await mkdtemp(join(tmpdir(), 'stratacache-discover-'));
    after(() => rm(dir, { recursive: true, force: true }));
    const config = join(dir, 'stratacache.config.json');
    await writeFile(config, JSON.stringify({ peers: { queryTimeout: '2s' } }));
    const procs = await Promise.all(
      ports.map((port) =>
        serveCli(
          ['--upstream', up.url, '--port', String(port), '--self', `http://127.0.0.1:${port}`, '--key-host', 'www.example.test', '--admin-on-main', '--config', config].concat([
            '--discover-dns',
            '_http._tcp.web.test',
            '--discover-servers',
            dns.address,
            '--discover-interval',
            '100ms',
          ]),
          env,
        ),
      ),
    );
    const peersOf = async (site: string): Promise<string[]> => (JSON.parse((await request(`${site}/_stratacache/stats`)).body) as { stats: { peers: Array<{ url: string }> } }).stats.peers.map((p) => p.url);
    for (const [i, p] of procs.entries()) {
      const other = `http://127.0.0.1:${ports[1 - i]}`;
      assert.ok(await until(async () => (await peersOf(p.site)).includes(other), 15_000), `${p.site} never found ${other}: ${p.stderr()}`);
    }
    assert.equal((await request(`${procs[0]!.site}/shared`)).headers['x-cache'], 'MISS');
    assert.equal((await request(`${procs[1]!.site}/shared`)).headers['x-cache'], 'PEER');
    assert.equal(renders, 1);
    for (const p of procs) p.child.kill('SIGTERM');
    for (const p of procs) assert.equal(await p.exited, 0);
  });
});
