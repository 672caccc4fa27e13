/**
 * Issue 24 on `cache.data.get` without sockets: soft and hard timeouts, the loader's context
 * (adaptive lifetimes, skip), early refresh (refresh-ahead, XFetch with an injected random
 * source), TTL jitter, and the validation of every new option. Date and setTimeout are mocked:
 * loaders "take" 200 ms of mocked time, nothing sleeps.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, mock, test } from 'node:test';
import { createCache, DataTimeoutError, DEFAULTS, type DataLoaderContext, type StrataCache } from '../../src/index.js';

const T0 = 1_700_000_000_000;
const caches: StrataCache[] = [];

/** A cache on mocked Date and setTimeout (closed on real timers after the test). */
function mockedCache(options: Parameters<typeof createCache>[0] = {}): StrataCache {
  mock.timers.enable({ apis: ['Date', 'setTimeout'], now: T0 });
  const cache = createCache(options);
  caches.push(cache);
  return cache;
}

afterEach(async () => {
  mock.timers.reset();
  for (const cache of caches.splice(0)) await cache.close();
});

/** Lets every promise job queued so far run (setImmediate is not mocked). */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Advances mocked time by `ms` once the pending jobs ran (a load starts a tick after its get), then lets them run again. */
async function tick(ms: number): Promise<void> {
  await settle();
  mock.timers.tick(ms);
  await settle();
}

/** A loader that takes `ms` of (mocked) time and answers its call number. */
function slowLoader(ms: number): { load: () => Promise<number>; calls: () => number } {
  let calls = 0;
  return {
    load: async () => {
      const n = ++calls;
      await new Promise((resolve) => setTimeout(resolve, ms));
      return n;
    },
    calls: () => calls,
  };
}

/** Whether `p` settled after the pending jobs ran (no mocked time passing). */
async function settledNow(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  void p.then(
    () => (done = true),
    () => (done = true),
  );
  await settle();
  return done;
}

describe('soft and hard timeouts', () => {
  test('past softTimeout a caller with a stale value at hand gets it at once; the load goes on and is stored', async () => {
    const cache = mockedCache();
    const loader = slowLoader(5_000);
    const opts = { ttl: 1_000, staleIfError: 60_000, softTimeout: 100 };
    const first = cache.data.get('k', loader.load, opts);
    await tick(5_000);
    assert.equal(await first, 1);
    await tick(2_000); // expired, inside staleIfError
    const waiting = cache.data.get('k', loader.load, opts);
    assert.equal(await settledNow(waiting), false, 'waits for the load first');
    await tick(100);
    assert.equal(await waiting, 1, 'the stale value at the soft timeout');
    assert.equal(cache.data.stats().softTimeouts, 1);
    await tick(4_900);
    await settle();
    assert.equal(await cache.data.get('k', loader.load, opts), 2, 'the background load was stored');
    assert.equal(loader.calls(), 2);
  });

  test('softTimeout without a stale value at hand: the caller waits for the load', async () => {
    const cache = mockedCache({ data: { softTimeout: 100 } });
    const loader = slowLoader(1_000);
    const cold = cache.data.get('k', loader.load);
    await tick(500);
    assert.equal(await settledNow(cold), false);
    await tick(500);
    assert.equal(await cold, 1);
    assert.equal(cache.data.stats().softTimeouts, 0);
  });

  test('past hardTimeout the caller gets DataTimeoutError (ERR_DATA_TIMEOUT); the load is still stored', async () => {
    const cache = mockedCache({ data: { hardTimeout: 200 } });
    const loader = slowLoader(1_000);
    const late = cache.data.get('k', loader.load);
    const rejected = assert.rejects(late, (e: unknown) => e instanceof DataTimeoutError && e.code === 'ERR_DATA_TIMEOUT' && /hardTimeout \(200ms\)/.test(e.message));
    await tick(200);
    await rejected;
    assert.equal(cache.data.stats().hardTimeouts, 1);
    await tick(800);
    await settle();
    assert.equal(await cache.data.get('k', loader.load), 1, 'stored when it settled');
    assert.equal(loader.calls(), 1);
  });

  test('a call’s own timeouts win over options.data', async () => {
    const cache = mockedCache({ data: { hardTimeout: 100 } });
    const loader = slowLoader(300);
    const own = cache.data.get('k', loader.load, { hardTimeout: 0 });
    await tick(300);
    assert.equal(await own, 1);
  });
});

describe('adaptive lifetimes: the loader’s ctx', () => {
  test('ctx.options.ttl, tags and staleWhileRevalidate decide how this answer is stored', async () => {
    const cache = mockedCache();
    let loads = 0;
    const loader = (ctx: DataLoaderContext): string => {
      loads++;
      assert.deepEqual(ctx.options, { ttl: 60_000, staleWhileRevalidate: 0, staleIfError: 0, tags: ['base'] });
      assert.equal(ctx.key, 'token');
      ctx.options.ttl = 5_000; // e.g. the API said max-age=5
      ctx.options.staleWhileRevalidate = 1_000;
      ctx.options.tags.push('token');
      return `token ${loads}`;
    };
    const opts = { ttl: 60_000, tags: ['base'] };
    assert.equal(await cache.data.get('token', loader, opts), 'token 1');
    await tick(4_999);
    assert.equal(await cache.data.get('token', loader, opts), 'token 1');
    await tick(2);
    assert.equal(await cache.data.get('token', loader, opts), 'token 1', 'stale inside the swr the loader set');
    await settle();
    assert.equal(await cache.data.get('token', loader, opts), 'token 2');
    await cache.invalidateTags(['token']);
    assert.equal(await cache.data.get('token', loader, opts), 'token 3', 'the tag the loader added');
  });

  test('ctx.skip(): answered to every caller of the load, not stored; the stored value stays', async () => {
    const cache = mockedCache();
    let loads = 0;
    const loader = (ctx: DataLoaderContext): number => {
      if (++loads > 1) ctx.skip();
      return loads;
    };
    assert.equal(await cache.data.get('k', loader, { ttl: 1_000, staleIfError: 10_000 }), 1);
    await tick(1_000);
    const [a, b] = await Promise.all([cache.data.get('k', loader), cache.data.get('k', loader)]);
    assert.deepEqual([a, b], [2, 2]);
    assert.equal(cache.data.stats().skipped, 1);
    assert.equal(await cache.data.get('k', loader), 3, 'not stored: loaded again');
  });

  test('a loader written as () => value still works; an invalid ctx.options fails the load naming it', async () => {
    const cache = mockedCache();
    assert.equal(await cache.data.get('plain', () => 42), 42);
    await assert.rejects(
      cache.data.get('bad', (ctx) => ((ctx.options.ttl = -1), 1)),
      (e: unknown) => e instanceof TypeError && /ctx\.options\.ttl/.test(e.message),
    );
    await assert.rejects(
      cache.data.get('bad-tags', (ctx) => ((ctx.options.tags = ['a b']), 1)),
      /ctx\.options\.tags/,
    );
  });
});

describe('early refresh and TTL jitter', () => {
  /** Steady load on one hot key: a get every 20 ms for 5 s; how many callers had to wait. */
  async function steadyLoad(cache: StrataCache, loader: () => Promise<number>): Promise<{ waited: number; values: number[] }> {
    const first = cache.data.get('hot', loader, { ttl: 1_000 });
    await tick(200);
    await first;
    let waited = 0;
    const pending: Array<Promise<number>> = [];
    for (let t = 0; t < 5_000; t += 20) {
      await tick(20);
      const p = cache.data.get('hot', loader, { ttl: 1_000 });
      pending.push(p);
      if (!(await settledNow(p))) waited++;
    }
    await tick(1_000);
    return { waited, values: await Promise.all(pending) };
  }

  test('a hot key with a 200 ms loader under steady load never makes callers wait at expiry (refreshAhead)', async () => {
    const cache = mockedCache({ data: { refreshAhead: 0.5 } });
    const loader = slowLoader(200);
    const { waited, values } = await steadyLoad(cache, loader.load);
    assert.equal(waited, 0, 'no caller waited for a load');
    assert.equal(cache.data.stats().misses, 1, 'only the cold call');
    assert.ok(cache.data.stats().earlyRefreshes >= 5, `refreshed ahead about once a second (${cache.data.stats().earlyRefreshes})`);
    assert.ok(values.at(-1)! > 5, 'callers saw the refreshed values');
    assert.deepEqual(values, [...values].sort((a, b) => a - b), 'never an older value after a newer one');
  });

  test('the same load without early refresh makes callers wait at each expiry (the control)', async () => {
    const cache = mockedCache();
    const { waited } = await steadyLoad(cache, slowLoader(200).load);
    assert.ok(waited >= 20, `callers waited at expiry (${waited})`);
  });

  test('XFetch (earlyRefresh) with an injected random source: refreshes once now - delta * beta * ln(random) passes expiry', async () => {
    // ln(0.5) * 200 ms * beta 1 = -138.6 ms: a get within the last 138.6 ms of the ttl refreshes.
    const cache = mockedCache({ data: { earlyRefresh: 1, random: () => 0.5 } });
    const loader = slowLoader(200);
    const first = cache.data.get('k', loader.load, { ttl: 1_000 });
    await tick(200); // loaded at T0 + 200, stale at T0 + 1200
    assert.equal(await first, 1);
    await tick(860); // T0 + 1060: 1060 + 138.6 < 1200
    assert.equal(await cache.data.get('k', loader.load, { ttl: 1_000 }), 1);
    assert.equal(cache.data.stats().earlyRefreshes, 0);
    await tick(10); // T0 + 1070: 1208.6 >= 1200
    assert.equal(await cache.data.get('k', loader.load, { ttl: 1_000 }), 1, 'answered at once');
    assert.equal(cache.data.stats().earlyRefreshes, 1);
    await tick(200);
    await settle();
    assert.equal(await cache.data.get('k', loader.load, { ttl: 1_000 }), 2);
    assert.equal(cache.data.stats().misses, 1);
  });

  test('ttlJitter cuts up to its fraction of the ttl, drawn from the random source', async () => {
    const cache = mockedCache({ data: { ttlJitter: 0.2, random: () => 0.5 } });
    let loads = 0;
    const load = (): number => ++loads;
    await cache.data.get('k', load, { ttl: 1_000 }); // stored for 1000 - 0.2 * 0.5 * 1000 = 900 ms
    await tick(899);
    assert.equal(await cache.data.get('k', load, { ttl: 1_000 }), 1);
    await tick(1);
    assert.equal(await cache.data.get('k', load, { ttl: 1_000 }), 2);
    assert.equal(await cache.data.get('j', load, { ttl: 1_000, ttlJitter: 0 }), 3);
    await tick(999);
    assert.equal(await cache.data.get('j', load, { ttl: 1_000 }), 3, 'the call’s own ttlJitter: 0');
  });
});

describe('options of issue 24', () => {
  test('defaults are frozen; bad values throw at construction naming the option path', () => {
    assert.ok(Object.isFrozen(DEFAULTS.data));
    const bad: Array<[object, RegExp]> = [
      [{ softTimeout: -1 }, /options\.data\.softTimeout/],
      [{ hardTimeout: 1.5 }, /options\.data\.hardTimeout/],
      [{ softTimeout: 500, hardTimeout: 500 }, /options\.data\.softTimeout to be less than options\.data\.hardTimeout \(500\)/],
      [{ refreshAhead: 1 }, /options\.data\.refreshAhead/],
      [{ earlyRefresh: 'yes' }, /options\.data\.earlyRefresh/],
      [{ ttlJitter: -0.1 }, /options\.data\.ttlJitter/],
      [{ random: 0.5 }, /options\.data\.random to be a function/],
    ];
    for (const [data, message] of bad) assert.throws(() => createCache({ data } as never), message);
  });

  test('a call’s bad option rejects naming it', async () => {
    const cache = createCache();
    caches.push(cache);
    await assert.rejects(cache.data.get('k', () => 1, { hardTimeout: -5 }), /options\.hardTimeout/);
    await assert.rejects(cache.data.get('k', () => 1, { refreshAhead: 2 }), /options\.refreshAhead/);
    await assert.rejects(cache.data.get('k', () => 1, { tags: ['a b'] }), /options\.tags/);
  });
});
