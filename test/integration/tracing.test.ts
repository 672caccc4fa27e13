/**
 * Tracing channels over real sockets: a subscriber sees start and end, with the key, for the
 * lookup, render, store, flush and peer steps of known requests; nothing is published once it
 * unsubscribes.
 */
import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import { test } from 'node:test';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCache, DiskStore, TRACING_CHANNELS } from '../../src/index.js';
import { countingOrigin, HOST, startCluster } from '../helpers/cluster.js';
import { closedAfterFile, listen, request } from '../helpers/http.js';

const tracked = closedAfterFile();

interface Span {
  channel: string;
  events: string[];
  context: Record<string, unknown>;
}

/** Subscribes to every stratacache channel; spans in the order they started. */
function record(): { spans: Span[]; stop(): void } {
  const spans: Span[] = [];
  const byContext = new Map<object, Span>();
  const subs: Array<() => void> = [];
  for (const name of Object.values(TRACING_CHANNELS)) {
    const channel = diagnostics.tracingChannel(name);
    const on = (event: string) => (context: unknown) => {
      const ctx = context as Record<string, unknown>;
      let span = byContext.get(ctx);
      if (span === undefined) byContext.set(ctx, (span = { channel: name, events: [], context: ctx }));
      if (event === 'start') spans.push(span);
      span.events.push(event);
    };
    const handlers = { start: on('start'), end: on('end'), asyncStart: on('asyncStart'), asyncEnd: on('asyncEnd'), error: on('error') };
    channel.subscribe(handlers);
    subs.push(() => channel.unsubscribe(handlers));
  }
  return { spans, stop: () => subs.forEach((s) => s()) };
}

/** Waits until `check` holds (spans of background steps end after the response). */
async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(check(), 'condition not reached');
}

test('lookup, render, store and flush spans carry the key and end with the outcome', async () => {
  // Store spans are the I/O tiers' (disk here); the memory tier is a map, not traced.
  const cache = createCache({ stores: [new DiskStore({ dir: mkdtempSync(join(tmpdir(), 'strata-trace-')), maxSize: 1024 * 1024 })] });
  tracked.caches.push(cache);
  const srv = await listen(
    cache.wrap((_req, res) => {
      res.writeHead(200, { 'cache-control': 'public, max-age=60' });
      res.end('page');
    }),
  );
  tracked.servers.push(srv);
  const key = `127.0.0.1:${srv.port}/traced`;
  const { spans, stop } = record();
  try {
    assert.equal((await request(`${srv.url}/traced`)).headers['x-cache'], 'MISS');
    await until(() => spans.some((s) => s.channel === 'stratacache:store' && s.context.op === 'set' && s.events.includes('asyncEnd')));
    const lookup = spans.find((s) => s.channel === 'stratacache:lookup')!;
    assert.equal(lookup.context.key, key);
    assert.equal(lookup.context.url, '/traced');
    assert.equal(lookup.context.status, 'MISS');
    assert.deepEqual(lookup.events, ['start', 'end', 'asyncStart', 'asyncEnd']);
    const render = spans.find((s) => s.channel === 'stratacache:render')!;
    assert.equal(render.context.key, key);
    assert.equal(render.context.background, false);
    assert.equal(render.context.statusCode, 200);
    assert.equal(render.context.stored, true);
    assert.ok(render.events.includes('start') && render.events.at(-1)!.endsWith('nd'));
    const get = spans.find((s) => s.channel === 'stratacache:store' && s.context.op === 'get')!;
    assert.deepEqual([get.context.tier, get.context.key, get.context.found], ['disk', key, false]);
    const store = spans.find((s) => s.channel === 'stratacache:store' && s.context.op === 'set')!;
    assert.equal(store.context.key, key);
    assert.equal(store.context.tier, 'disk');
    assert.equal(store.events.at(-1), 'asyncEnd');

    spans.length = 0;
    assert.equal((await request(`${srv.url}/traced`)).headers['x-cache'], 'HIT');
    const hit = spans.find((s) => s.channel === 'stratacache:lookup')!;
    // A memory hit answers synchronously: its span ends at `end`.
    assert.deepEqual(hit.events, ['start', 'end']);
    assert.equal(hit.context.key, key);
    assert.equal(hit.context.status, 'HIT');
    assert.equal(hit.context.async, undefined);

    spans.length = 0;
    const { id } = await cache.invalidate('/traced', { hard: true });
    const flush = spans.find((s) => s.channel === 'stratacache:flush')!;
    assert.deepEqual(flush.context.paths, ['/traced']);
    assert.equal(flush.context.hard, true);
    assert.equal(flush.context.origin, 'local');
    assert.equal(flush.context.id, id);
    assert.equal(flush.events.at(-1), 'end');
  } finally {
    stop();
  }
  // Unsubscribed: nothing is published any more.
  for (const name of Object.values(TRACING_CHANNELS)) assert.equal(diagnostics.tracingChannel(name).hasSubscribers, false, name);
  const before = spans.length;
  await request(`${srv.url}/traced`);
  assert.equal(spans.length, before);
});

test('a peer call is a span with the peer, the key and the outcome', async () => {
  const origin = countingOrigin();
  const cluster = await startCluster(2, origin);
  tracked.caches.push(cluster);
  const [a, b] = cluster.nodes as [(typeof cluster.nodes)[0], (typeof cluster.nodes)[0]];
  await request(`${a.url}/shared`, { headers: { host: HOST } });
  const { spans, stop } = record();
  try {
    const r = await request(`${b.url}/shared`, { headers: { host: HOST } });
    assert.equal(r.headers['x-cache'], 'PEER');
    const peer = spans.find((s) => s.channel === 'stratacache:peer')!;
    assert.equal(peer.context.peer, a.url);
    assert.equal(peer.context.key, `${HOST}/shared`);
    assert.equal(peer.context.outcome, 'hit');
    assert.deepEqual(peer.events, ['start', 'end', 'asyncStart', 'asyncEnd']);
  } finally {
    stop();
  }
  assert.equal(origin.total(), 1);
});
