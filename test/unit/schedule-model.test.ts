/**
 * The schedule test's reference model (test/helpers/schedule/model.ts) catches what it must: a
 * model that accepts everything would make the schedule test worthless. Each case builds a small
 * record by hand (renders, requests, invalidations) with one planted bug and checks the model
 * names it, and that the same record without the bug passes. The last case plays real schedules
 * against a deliberately broken cache (it stores and shares private pages) and checks the model
 * reports the leak.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { describe, test } from 'node:test';
import type { Stamp } from '../helpers/schedule/clock.js';
import { check, type Rule } from '../helpers/schedule/model.js';
import { bodyOf, type RenderRecord } from '../helpers/schedule/origin.js';
import { planOf, type Behaviour, type ScheduleOptions } from '../helpers/schedule/plan.js';
import { runSchedule, type CacheUnderTest, type EventRecord, type RequestRecord, type ScheduleRecord } from '../helpers/schedule/run.js';

const OPTIONS: ScheduleOptions = { originTimeout: 300, gracePeriod: 150, serveStaleOnError: false, passTtl: 0, closeTimeout: 300 };

/** A stamp at sequence `seq`, `seq` ms in. */
const at = (seq: number): Stamp => ({ seq, ms: seq });

/** Render `id`, begun at `begin`, ended 2 later (`end: null`: never). */
function render(id: number, over: Omit<Partial<RenderRecord>, 'begin' | 'end'> & { behaviour: Behaviour; begin: number; end?: null }): RenderRecord {
  const user = over.user ?? 'anon';
  const r: RenderRecord = {
    id,
    key: '/s/a',
    n: id - 1,
    spec: planOf(1).render('/s/a', 0),
    user,
    forReq: undefined,
    generation: 0,
    status: 200,
    body: Buffer.alloc(0),
    etag: `"b${id}"`,
    audience: 'shared',
    completed: true,
    maxAge: 30,
    maxGap: over.behaviour === 'hang' || over.behaviour === 'stall' ? Infinity : 0,
    ...over,
    begin: at(over.begin),
    headersAt: at(over.begin + 1),
    end: over.end === null ? undefined : at(over.begin + 2),
  };
  r.body = bodyOf(r, 300);
  return r;
}

/** Request `id`, sent at `sent`, that got render `r` whole (as `xcache`). */
function got(id: number, r: RenderRecord, over: Omit<Partial<RequestRecord>, 'sent'> & { sent: number; xcache?: string }): RequestRecord {
  const { sent, xcache, ...rest } = over;
  return {
    id,
    key: r.key,
    kind: 'anon',
    user: undefined,
    method: 'GET',
    sentHeaders: { 'x-req': String(id) },
    sent: at(sent),
    response: at(sent + 1),
    end: at(sent + 2),
    status: r.status,
    headers: { 'x-render': String(r.id), etag: r.etag, 'x-cache': xcache ?? 'HIT', 'content-length': String(r.body.length) },
    body: r.body,
    outcome: 'complete',
    lag: 0,
    ...rest,
  };
}

function record(renders: RenderRecord[], requests: RequestRecord[], events: EventRecord[] = [], options: Partial<ScheduleOptions> = {}): ScheduleRecord {
  return { plan: { ...planOf(1), options: { ...OPTIONS, ...options } }, renders, requests, events, close: { ms: 1, settled: true, lag: 0 } };
}

function rules(r: ScheduleRecord): Rule[] {
  return check(r).map((v) => v.rule);
}

function invalidation(id: number, kind: EventRecord['kind'], issued: number, done: number): EventRecord {
  return { id, kind, path: '/s/a', scope: 'resource', tag: 'all', issued: at(issued), done: at(done) };
}

describe('schedule model', () => {
  test('a shareable page served to everyone passes', () => {
    const r = render(1, { behaviour: 'ok', forReq: 1, begin: 10 });
    assert.deepEqual(rules(record([r], [got(1, r, { sent: 5, xcache: 'MISS' }), got(2, r, { sent: 6 }), got(3, r, { sent: 20, kind: 'cookie', user: 'u2' })])), []);
  });

  test("a private page served to another user is a leak; to its own request it is not", () => {
    const r = render(1, { behaviour: 'private', user: 'u1', forReq: 1, audience: 'owner', begin: 10 });
    const own = got(1, r, { sent: 5, kind: 'cookie', user: 'u1', xcache: 'MISS' });
    assert.deepEqual(rules(record([r], [own])), []);
    assert.deepEqual(rules(record([r], [own, got(2, r, { sent: 20, kind: 'cookie', user: 'u2' })])), ['leak']);
  });

  test('an error without freshness reaches only requests waiting at the same time', () => {
    const r = render(1, { behaviour: 'error', status: 503, forReq: 1, audience: 'concurrent', maxAge: undefined, begin: 10 });
    const waiter = got(2, r, { sent: 8, end: at(30), xcache: 'HIT' });
    assert.deepEqual(rules(record([r], [got(1, r, { sent: 5, xcache: 'MISS' }), waiter])), []);
    assert.deepEqual(rules(record([r], [got(3, r, { sent: 30 })])), ['leak']);
  });

  test('a render begun before a hard invalidation that completed is never served; one begun after is', () => {
    const old = render(1, { behaviour: 'ok', forReq: 1, begin: 10 });
    const fresh = render(2, { behaviour: 'ok', forReq: 3, begin: 40 });
    const purge = invalidation(100, 'purge', 20, 25);
    assert.deepEqual(rules(record([old], [got(2, old, { sent: 30, xcache: 'STALE' })], [purge])), ['hard-invalidation']);
    assert.deepEqual(rules(record([old, fresh], [got(1, old, { sent: 5, xcache: 'MISS' }), got(3, fresh, { sent: 30, xcache: 'MISS' })], [purge])), []);
    // Sent before the PURGE completed: the old page may still be the answer.
    assert.deepEqual(rules(record([old], [got(2, old, { sent: 22 })], [purge])), []);
  });

  test('after a soft invalidation an older render is served only as STALE, and without stale-on-error only within grace', () => {
    const old = render(1, { behaviour: 'ok', forReq: 1, begin: 10 });
    const soft = invalidation(100, 'soft', 20, 21);
    assert.deepEqual(rules(record([old], [got(2, old, { sent: 30, xcache: 'HIT' })], [soft])), ['soft-invalidation']);
    assert.deepEqual(rules(record([old], [got(2, old, { sent: 30, xcache: 'STALE' })], [soft])), []);
    // Grace is 150 ms: at 500 ms the STALE copy needs stale-on-error (off here).
    assert.deepEqual(rules(record([old], [got(2, old, { sent: 500, xcache: 'STALE' })], [soft])), ['stale']);
    assert.deepEqual(rules(record([old], [got(2, old, { sent: 500, xcache: 'STALE' })], [soft], { serveStaleOnError: true })), []);
  });

  test('a complete-looking response with a short body is truncated; a cut one is fine only if its render never finished', () => {
    const r = render(1, { behaviour: 'slow', forReq: 1, begin: 10 });
    const short = r.body.subarray(0, 100);
    assert.deepEqual(rules(record([r], [got(1, r, { sent: 5, xcache: 'MISS', body: short })])), ['truncated']);
    assert.deepEqual(rules(record([r], [got(1, r, { sent: 5, xcache: 'MISS', body: short, outcome: 'cut' })])), ['cut']);
    const stalled = render(1, { behaviour: 'stall', forReq: 1, begin: 10, completed: false });
    assert.deepEqual(rules(record([stalled], [got(1, stalled, { sent: 5, xcache: 'MISS', body: stalled.body.subarray(0, 10), outcome: 'cut' })])), []);
  });

  test("a 500 or 504 the origin never sent is flagged, unless a render threw or hung while the request waited", () => {
    const r = render(1, { behaviour: 'ok', forReq: 1, begin: 10 });
    const error = (id: number, status: number, sent: number): RequestRecord => ({ ...got(id, r, { sent }), end: at(sent + 30), status, headers: { 'x-cache': 'MISS' }, body: Buffer.from('Internal Server Error') });
    const first = got(1, r, { sent: 5, xcache: 'MISS' });
    assert.deepEqual(rules(record([r], [first, error(2, 500, 5)])), ['status']);
    const threw = render(2, { behaviour: 'throw', forReq: 3, begin: 20, audience: 'none', status: undefined });
    assert.deepEqual(rules(record([r, threw], [first, error(3, 500, 15)])), []);
    const hung = render(2, { behaviour: 'hang', forReq: 3, begin: 20, audience: 'none', status: undefined, completed: false, end: null });
    assert.deepEqual(rules(record([r, hung], [first, error(3, 504, 15)])), []);
    assert.deepEqual(rules(record([r, threw], [first, error(3, 504, 15)])), ['status']);
  });

  test('a request that never ends, or ends past the bound, is flagged', () => {
    const r = render(1, { behaviour: 'ok', forReq: 1, begin: 10 });
    assert.deepEqual(rules(record([r], [{ ...got(1, r, { sent: 5 }), outcome: 'timeout', end: at(10_000) }])), ['wait-bound']);
    assert.deepEqual(rules(record([r], [{ ...got(1, r, { sent: 5 }), end: at(10_000) }])), ['wait-bound']);
    // The same wait on a machine whose event loop ran 4 s late is within the bound.
    assert.deepEqual(rules(record([r], [{ ...got(1, r, { sent: 5 }), end: at(10_000), lag: 4_000 }])), []);
  });

  test('a fresh HIT past its max-age is flagged', () => {
    const r = render(1, { behaviour: 'ok', forReq: 1, begin: 10, maxAge: 1 });
    assert.deepEqual(rules(record([r], [got(2, r, { sent: 2_000 })])), ['expired']);
    assert.deepEqual(rules(record([r], [got(2, r, { sent: 2_000, xcache: 'STALE' })], [], { serveStaleOnError: true })), []);
  });

  test('more renders of a key than its requests, stale answers and refetches allow is flagged', () => {
    const renders = [1, 2, 3].map((id) => render(id, { behaviour: 'ok', begin: id * 10 }));
    assert.deepEqual(rules(record(renders, [got(1, renders[0]!, { sent: 5 }), got(2, renders[1]!, { sent: 6 })])), ['render-bound']);
  });

  test('played against a cache that stores private pages, the model reports the leak', async () => {
    const rulesSeen = new Set<Rule>();
    // Seeds whose origin answers private, Set-Cookie or personal pages before other requests come.
    for (let seed = 1; seed <= 40 && !rulesSeen.has('leak'); seed++) {
      const result = await runSchedule(seed, { cache: leakyCache, exclusions: { behaviours: ['hang', 'stall', 'stop', 'slow'], requests: [], events: [], aborts: [] } });
      for (const v of result.violations) rulesSeen.add(v.rule);
    }
    assert.ok(rulesSeen.has('leak'), `the model missed the leak; it reported: ${[...rulesSeen].join(', ')}`);
  });
});

/**
 * A deliberately broken cache for the last case: it keeps the first complete 200 of each path,
 * whatever its Cache-Control or Set-Cookie, and serves it to everyone; it ignores invalidations.
 */
function leakyCache(): CacheUnderTest {
  const stored = new Map<string, { headers: Record<string, unknown>; body: Buffer }>();
  return {
    wrap: (handler) => (req: IncomingMessage, res: ServerResponse) => {
      const path = req.url ?? '/';
      if (req.method === 'PURGE') return void res.end('purged (not really)');
      const hit = stored.get(path);
      if (hit !== undefined) {
        res.writeHead(200, { ...(hit.headers as Record<string, string>), 'x-cache': 'HIT' });
        return void res.end(req.method === 'HEAD' ? undefined : hit.body);
      }
      let head: { status: number; headers: Record<string, unknown> } | undefined;
      const writeHead = res.writeHead.bind(res) as (status: number, headers: Record<string, unknown>) => ServerResponse;
      res.writeHead = ((status: number, headers: Record<string, unknown>) => {
        head = { status, headers };
        return writeHead(status, { ...headers, 'x-cache': 'MISS' });
      }) as unknown as ServerResponse['writeHead'];
      const end = res.end.bind(res) as (body?: Buffer) => ServerResponse;
      res.end = ((body?: Buffer) => {
        if (head?.status === 200 && Buffer.isBuffer(body) && req.method === 'GET' && req.headers.range === undefined) stored.set(path, { headers: head.headers, body });
        return end(body);
      }) as unknown as ServerResponse['end'];
      try {
        const r = handler(req, res);
        if (r instanceof Promise) r.catch(() => res.headersSent || (res.writeHead(500), res.end()));
      } catch {
        res.writeHead(500);
        res.end();
      }
    },
    invalidate: async () => ({ refetched: Promise.resolve({ ok: 0, failed: 0 }) }),
    invalidateTags: async () => undefined,
    close: async () => undefined,
  };
}
