/**
 * Prometheus metrics over real sockets: known traffic through a wrapped handler, then a scrape of
 * `cache.metricsHandler()` must report exactly what `cache.stats()` counts, in the 0.0.4 text
 * format; a prom-client Registry given the same collectors renders the same samples.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { createCache, DiskStore } from '../../src/index.js';
import { renderMetrics, METRICS } from '../../src/observe/metrics.js';
import { closedAfterFile, listen, request } from '../helpers/http.js';
import { until } from '../helpers/origin.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const tracked = closedAfterFile();

/** `name{labels} value` lines of an exposition, as a map. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    out.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return out;
}

async function site() {
  const dir = mkdtempSync(join(tmpdir(), 'strata-metrics-'));
  const disk = new DiskStore({ dir, maxSize: 1024 * 1024 });
  const cache = createCache({ stores: [disk] });
  tracked.caches.push(cache);
  let renders = 0;
  const srv = await listen(
    cache.wrap((req, res) => {
      renders++;
      if (req.url === '/private') res.setHeader('cache-control', 'private');
      else res.setHeader('cache-control', 'public, max-age=60');
      res.end(`page ${req.url}`);
    }),
  );
  tracked.servers.push(srv);
  const metrics = await listen(cache.metricsHandler());
  tracked.servers.push(metrics);
  return { cache, disk, srv, metrics, renders: () => renders };
}

test('a scrape reports the requests, renders and tiers cache.stats() counts', async () => {
  const { cache, disk, srv, metrics, renders } = await site();
  for (let i = 0; i < 3; i++) await request(`${srv.url}/a`); // 1 miss, 2 hits
  await request(`${srv.url}/b`); // 1 miss
  await request(`${srv.url}/private`); // rendered, not stored
  await request(`${srv.url}/private`); // pass (hit-for-pass)
  await request(`${srv.url}/x`, { method: 'POST' }); // pass
  // Lower-tier writes finish after the response: wait (bounded) for both entries to reach the disk.
  assert.ok(await until(() => disk.size().entries >= 2, 10_000), 'the disk tier never held both entries');
  const reply = await request(`${metrics.url}/metrics`);
  assert.equal(reply.status, 200);
  assert.equal(reply.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
  const m = samples(reply.body);
  const s = cache.stats();
  assert.equal(m.get('stratacache_requests_total{status="hit"}'), 2);
  assert.equal(m.get('stratacache_requests_total{status="hit"}'), s.hits);
  assert.equal(m.get('stratacache_requests_total{status="miss"}'), s.misses);
  assert.equal(m.get('stratacache_requests_total{status="pass"}'), s.passes);
  assert.equal(m.get('stratacache_renders_total{kind="request"}'), s.misses);
  assert.equal(renders(), 5);
  assert.equal(m.get('stratacache_stores_total'), 2);
  assert.equal(m.get('stratacache_tier_entries{tier="memory"}'), 2);
  assert.equal(m.get('stratacache_tier_bytes{tier="memory"}'), s.bytes);
  assert.ok(s.bytes > 0);
  assert.equal(m.get('stratacache_tier_entries{tier="disk"}'), 2);
  assert.ok((m.get('stratacache_tier_bytes{tier="disk"}') ?? 0) > 0);
  assert.equal(m.get('stratacache_tier_entries{tier="data"}'), 0);
  // Every sample has its HELP and TYPE lines first, and counters end in _total.
  for (const def of METRICS) {
    const help = reply.body.indexOf(`# HELP ${def.name} `);
    if (!reply.body.includes(`\n${def.name}`)) continue;
    assert.ok(help !== -1, def.name);
    assert.ok(reply.body.includes(`# TYPE ${def.name} ${def.type}\n`), def.name);
    if (def.type === 'counter') assert.match(def.name, /_total$/);
  }
  // After a flush the invalidation shows up.
  await cache.invalidate('/a');
  const after = samples((await request(`${metrics.url}/metrics`)).body);
  assert.equal(after.get('stratacache_invalidations_total'), 1);
  const head = await request(`${metrics.url}/metrics`, { method: 'HEAD' });
  assert.equal(head.body, '');
  assert.equal((await request(`${metrics.url}/metrics`, { method: 'POST' })).status, 405);
});

test('with metrics.registry, a prom-client Registry renders the same samples as the built-in exposition', async () => {
  const registry = new Registry();
  const cache = createCache({ metrics: { registry } });
  tracked.caches.push(cache);
  const srv = await listen(
    cache.wrap((_req, res) => {
      res.setHeader('cache-control', 'public, max-age=60');
      res.end('page');
    }),
  );
  tracked.servers.push(srv);
  const metrics = await listen(cache.metricsHandler());
  tracked.servers.push(metrics);
  await request(`${srv.url}/a`);
  await request(`${srv.url}/a`);
  const fromRegistry = samples(await registry.metrics());
  const ours = samples((await request(metrics.url)).body);
  assert.equal(fromRegistry.get('stratacache_requests_total{status="hit"}'), 1);
  assert.deepEqual([...fromRegistry.entries()].sort(), [...ours.entries()].sort());
  const json = await registry.getMetricsAsJSON();
  assert.ok(json.some((m) => m.name === 'stratacache_tier_bytes'));
  // One cache per registry: a second one is refused at construction, naming the option.
  assert.throws(() => createCache({ metrics: { registry } }), /options\.metrics\.registry already has stratacache_requests_total/);
  // A closed cache's metrics leave the registry, so a new cache can take its place.
  await cache.close();
  assert.equal(await registry.metrics(), '\n');
  const next = createCache({ metrics: { registry } });
  tracked.caches.push(next);
  assert.match(await registry.metrics(), /stratacache_requests_total\{status="hit"\} 0/);
});

test('options.metrics is validated at construction', () => {
  assert.throws(() => createCache({ metrics: { registry: {} as never } }), /expected options\.metrics\.registry to be a prom-client Registry/);
  assert.throws(() => createCache({ metrics: { registy: new Registry() } as never }), /unknown option options\.metrics\.registy/);
  assert.throws(() => createCache({ metrics: 'yes' as never }), /expected options\.metrics to be an object/);
  assert.throws(() => createCache({ cacheStatusDetail: 'yes' as never }), /expected options\.cacheStatusDetail to be a boolean/);
});

test('label values and help text are escaped as the exposition format requires', () => {
  const text = renderMetrics({ stats: {} as never, data: {} as never, tiers: [] }, [
    { name: 'x_total', help: 'a\\b\nc', type: 'counter', samples: () => [{ labels: { peer: 'http://h/"q"\\\n' }, value: 3 }] },
    { name: 'y', help: 'none', type: 'gauge', samples: () => [] },
  ]);
  assert.equal(text, '# HELP x_total a\\\\b\\nc\n# TYPE x_total counter\nx_total{peer="http://h/\\"q\\"\\\\\\n"} 3\n');
});

test('store failures and revalidations are counted and scraped', async () => {
  const failing = {
    name: 'flaky',
    get: () => undefined,
    set: () => {
      throw new Error('disk full');
    },
    delete: () => undefined,
  };
  const cache = createCache({ stores: [failing] });
  tracked.caches.push(cache);
  let renders = 0;
  const srv = await listen(
    cache.wrap((req, res) => {
      renders++;
      // The refresh sends the entry's validators (a revalidation); the origin answers 304 to them.
      if (req.headers['if-none-match'] === '"v1"') {
        res.writeHead(304, { etag: '"v1"', 'cache-control': 'public, max-age=1, stale-while-revalidate=60' });
        res.end();
        return;
      }
      res.setHeader('cache-control', 'public, max-age=1, stale-while-revalidate=60');
      res.setHeader('etag', `"v${renders}"`);
      res.end(`v${renders}`);
    }),
  );
  tracked.servers.push(srv);
  const metrics = await listen(cache.metricsHandler());
  tracked.servers.push(metrics);
  assert.equal((await request(`${srv.url}/swr`)).body, 'v1');
  await new Promise((r) => setTimeout(r, 1_100));
  const stale = await request(`${srv.url}/swr`);
  assert.equal(stale.headers['x-cache'], 'STALE');
  // The refresh's store fails too: one failure per stored render.
  for (let i = 0; i < 300 && cache.stats().storeErrors < 2; i++) await new Promise((r) => setTimeout(r, 10));
  const m = samples((await request(`${metrics.url}/`)).body);
  const s = cache.stats();
  assert.equal(s.revalidations, 1);
  assert.equal(m.get('stratacache_revalidations_total'), 1);
  assert.equal(s.notModified, 1);
  assert.equal(m.get('stratacache_revalidations_not_modified_total'), 1);
  assert.equal(s.storeErrors, 2);
  assert.equal(renders, 2);
  assert.equal(m.get('stratacache_store_errors_total'), s.storeErrors);
  assert.equal(m.get('stratacache_errors_total'), s.errors);
  assert.equal(m.get('stratacache_renders_total{kind="background"}'), 1);
});
