/**
 * Field test: three `stratacache serve` nodes (peers of each other) behind an nginx round-robin
 * upstream, as a load-balanced cluster is run. Every node sees the site's Host (nginx passes it
 * on), so they share keys: one origin render per URL, the other nodes answer with the copy of the
 * node that rendered it (X-Cache: PEER), and a flush sent to one node reaches all three.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { serveCli } from '../helpers/cli.js';
import { closedAfterFile, freePort, listen, request } from '../helpers/http.js';
import { startNginx } from '../helpers/nginx.js';
import { until } from '../helpers/origin.js';

const tracked = closedAfterFile();
const SECRET = 'field-cluster-secret-0123456789abcdef';

test('three nodes behind nginx round-robin: one render per URL, peer hits, a flush to one node reaches all', { timeout: 180_000 }, async () => {
  let version = 1;
  const renders = new Map<string, number>();
  const origin = await listen((req, res) => {
    renders.set(req.url ?? '', (renders.get(req.url ?? '') ?? 0) + 1);
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'public, max-age=300' });
    res.end(`v${version} ${req.url}`);
  });
  tracked.servers.push(origin);
  const ports = await Promise.all([0, 1, 2].map(() => freePort()));
  const nodes = ports.map((p) => `http://127.0.0.1:${p}`);
  // A peer lookup must not time out on a loaded CI machine (the default is 50 ms).
  const dir = mkdtempSync(join(tmpdir(), 'stratacache-field-'));
  writeFileSync(join(dir, 'cluster.json'), JSON.stringify({ peers: { queryTimeout: '5s', fetchTimeout: '5s' } }));
  const procs = await Promise.all(
    nodes.map((self, i) =>
      serveCli(['--config', join(dir, 'cluster.json'), '--upstream', origin.url, '--port', String(ports[i]), '--self', self, '--peers', nodes.join(','), '--admin', '127.0.0.1:0'], {
        STRATACACHE_PEER_SECRET: SECRET,
      }),
    ),
  );
  const nginx = await startNginx(
    1,
    ([listenOn]) => `
  upstream caches {
    ${nodes.map((n) => `server ${n.slice('http://'.length)};`).join('\n    ')}
  }
  server {
    listen ${listenOn};
    location / {
      proxy_pass http://caches;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }
  }`,
  );
  const [site] = nginx.urls as [string];

  // Round robin: the three requests for a URL land on the three nodes in turn.
  const paths = ['/one', '/two', '/three'];
  for (const path of paths) {
    const answers: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await request(`${site}${path}`);
      assert.equal(r.body, `v1 ${path}`);
      answers.push(String(r.headers['x-cache']));
    }
    assert.deepEqual(answers.sort(), ['MISS', 'PEER', 'PEER'], `${path}: ${answers.join(' ')} ${nginx.errors()}`);
    assert.equal(renders.get(path), 1, path);
  }
  // A flush sent to node 1 (its admin address, loopback: the operator's) reaches every node.
  version = 2;
  const flushed = await request(`${procs[0]!.admin!}/dispatcher/invalidate.cache`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ paths: ['/one'], hard: true }),
  });
  assert.equal(flushed.status, 200, flushed.body);
  const invalidations = async (admin: string): Promise<number> =>
    (JSON.parse((await request(`${admin}/_stratacache/stats`)).body) as { stats: { invalidations: number } }).stats.invalidations;
  for (const p of procs) assert.ok(await until(async () => (await invalidations(p.admin!)) >= 1, 30_000), `the flush reached ${p.site}`);
  const after: string[] = [];
  for (let i = 0; i < 3; i++) {
    const r = await request(`${site}/one`);
    assert.equal(r.body, 'v2 /one', `request ${i}: ${String(r.headers['x-cache'])}`);
    after.push(String(r.headers['x-cache']));
  }
  assert.deepEqual(after.sort(), ['MISS', 'PEER', 'PEER']);
  assert.equal(renders.get('/one'), 2);
  // The other URLs were not flushed: still one render each.
  for (const path of ['/two', '/three']) assert.equal(renders.get(path), 1, path);
  for (const p of procs) p.child.kill('SIGTERM');
  for (const p of procs) assert.equal(await p.exited, 0);
  rmSync(dir, { recursive: true, force: true });
});
