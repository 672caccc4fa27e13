/**
 * The packed memory tier: entries packed into one string each round-trip exactly (seeded random
 * entries, edge values included), the LRU table keeps the order a reference model keeps under
 * random operations, and the hot ring unpacks and packs again without changing what is served,
 * what is evicted or what is counted.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Entry } from '../../src/entry.js';
import { HOT_ENTRIES, MemoryStore } from '../../src/stores/memory.js';
import { PACK_LIMIT, packEntry, unpackEntry } from '../../src/stores/pack.js';
import { Slots } from '../../src/stores/slots.js';

/** mulberry32: a small seeded generator, so a failing case replays from its seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function entry(over: Partial<Entry> = {}): Entry {
  const now = Date.now();
  return {
    status: 200, headers: [['content-type', 'text/plain']], body: Buffer.from('hello'), storedAt: now, initialAge: 0, staleAt: now + 60_000,
    swrUntil: now + 60_000, sieUntil: now + 60_000, expiresAt: now + 120_000, etag: undefined, lastModified: undefined, shared: true,
    url: '/a', host: 'example.com', vary: [], tags: [], ...over,
  };
}

/** A random entry drawn from the space of what the engine stores, edge values included. */
function randomEntry(r: () => number, key: string): Entry {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const storedAt = pick([1_765_000_000_000 + Math.floor(r() * 1e9), 0, 1_765_000_000_000.5]);
  const time = (): number => pick([storedAt, storedAt + Math.floor(r() * 1e8), storedAt - Math.floor(r() * 1e6), Infinity, -Infinity, 0, storedAt + 0.25, 2 ** 60]);
  const text = (n: number): string => Array.from({ length: n }, () => String.fromCharCode(pick([32 + Math.floor(r() * 95), 128 + Math.floor(r() * 128), 9]))).join('');
  const headers: Array<[string, string]> = [];
  for (let i = Math.floor(r() * 6); i > 0; i--) {
    headers.push([pick(['content-type', 'cache-control', 'date', 'etag', 'x-custom', 'set-cookie', `x-${text(3)}`]), pick(['text/html', 'max-age=60', text(Math.floor(r() * 40)), text(300)])]);
  }
  const body = Buffer.alloc(pick([0, 1, 100, PACK_LIMIT]));
  for (let i = 0; i < body.length; i++) body[i] = Math.floor(r() * 256);
  const url = pick(['/a', '/page/1?x=1', `/${text(20)}`, '']);
  const e: Entry = {
    status: pick([200, 203, 301, 404, 599]), headers, body, storedAt, initialAge: pick([0, 5, 86400, 1.5]), staleAt: time(), swrUntil: time(), sieUntil: time(), expiresAt: time(),
    etag: pick([undefined, '"v1"', `W/"${text(10)}"`]), lastModified: pick([undefined, 'Mon, 01 Dec 2025 00:00:00 GMT']), shared: r() < 0.5,
    url: key.endsWith(url) || r() < 0.5 ? url : url, host: pick(['', 'example.com', `h${Math.floor(r() * 5)}.test`]),
    vary: pick([[], ['accept-encoding'], ['accept-language', 'x-device']]), tags: pick([[], ['product'], [text(8), 'a,b']]),
  };
  if (r() < 0.3) e.deps = pick([[], ['data:x'], ['data:y', text(12)]]);
  if (r() < 0.2) e.esi = true;
  if (r() < 0.2) e.loadMs = pick([0, 12, 3.5]);
  return e;
}

describe('packEntry / unpackEntry', () => {
  test('round-trip: every field equal, the body byte for byte (500 seeded random entries)', () => {
    for (let seed = 1; seed <= 500; seed++) {
      const r = rng(seed);
      const key = r() < 0.5 ? `example.com/page/${seed}` : `GET\nexample.com/a\nvariant:${seed}`;
      const e = randomEntry(r, key);
      const packed = packEntry(e, key);
      assert.ok(packed !== undefined, `seed ${seed}: packable`);
      assert.ok(!/[^\u0000-\u00ff]/.test(packed), `seed ${seed}: one byte per character`);
      assert.deepEqual(unpackEntry(packed, key), e, `seed ${seed}`);
    }
  });

  test('the URL is not repeated when the key ends with it', () => {
    const e = entry({ url: '/a/rather/long/path/name?with=query' });
    const inKey = packEntry(e, `example.com${e.url}`)!;
    const elsewhere = packEntry(e, 'some other key')!;
    assert.equal(elsewhere.length - inKey.length, e.url.length);
    assert.equal(unpackEntry(inKey, `example.com${e.url}`).url, e.url);
  });

  test('stays unpacked: a body over PACK_LIMIT, compressed variants, a body in a store medium, a string past Latin-1', () => {
    assert.equal(packEntry(entry({ body: Buffer.alloc(PACK_LIMIT + 1) }), 'k'), undefined);
    assert.equal(packEntry(entry({ encoded: { gzip: Buffer.from('x') } }), 'k'), undefined);
    assert.equal(packEntry(entry({ headers: [['set-cookie', 'caf\u00e9 \u2603']] }), 'k'), undefined);
    // A pair kept in the shared table needs no Latin-1: the entry holds its number.
    const wide = entry({ headers: [['x-name', 'caf\u00e9 \u2603']] });
    assert.deepEqual(unpackEntry(packEntry(wide, 'k')!, 'k'), wide);
    assert.equal(packEntry(entry({ tags: ['\u{1F600}'] }), 'k'), undefined);
    const source = { length: 1, codings: [], as: () => source, stream: () => undefined, load: async () => entry(), release: () => undefined } as unknown as NonNullable<Entry['source']>;
    assert.equal(packEntry(entry({ source }), 'k'), undefined);
  });

  test('a header pair shared by many entries is one frozen pair; a per-response one is the entry\'s own', () => {
    const a = unpackEntry(packEntry(entry({ headers: [['content-type', 'application/json'], ['date', 'Mon, 01 Dec 2025 00:00:00 GMT']] }), 'k')!, 'k');
    const b = unpackEntry(packEntry(entry({ headers: [['content-type', 'application/json'], ['date', 'Mon, 01 Dec 2025 00:00:00 GMT']] }), 'k')!, 'k');
    assert.equal(a.headers[0], b.headers[0]);
    assert.ok(Object.isFrozen(a.headers[0]));
    assert.notEqual(a.headers[1], b.headers[1]);
    assert.deepEqual(a.headers[1], b.headers[1]);
  });
});

describe('Slots (the LRU table) against a reference model', () => {
  test('random set/get/delete/replace over 40 keys: same keys, order, bytes and evictions as a Map-based LRU (50 seeds)', () => {
    for (let seed = 1; seed <= 50; seed++) {
      const r = rng(seed);
      const slots = new Slots<number>();
      // Reference: a Map whose insertion order is recency (oldest first).
      const model = new Map<string, { value: number; size: number }>();
      const maxBytes = 400;
      for (let step = 0; step < 2000; step++) {
        const key = `k${Math.floor(r() * 40)}`;
        const op = r();
        if (op < 0.45) {
          const size = 1 + Math.floor(r() * 60);
          slots.set(key, step, size);
          model.delete(key);
          model.set(key, { value: step, size });
          // Evict least recent while over the budget (the owner's job: MemoryStore does this).
          for (let bytes = [...model.values()].reduce((n, v) => n + v.size, 0); bytes > maxBytes; ) {
            const [oldest, v] = model.entries().next().value as [string, { size: number }];
            model.delete(oldest);
            bytes -= v.size;
            assert.equal(slots.key(slots.tail), oldest, `seed ${seed} step ${step}: tail`);
            slots.remove(slots.tail);
          }
        } else if (op < 0.75) {
          const slot = slots.slotOf(key);
          const m = model.get(key);
          assert.equal(slot >= 0, m !== undefined, `seed ${seed} step ${step}: has ${key}`);
          if (m !== undefined) {
            assert.equal(slots.value(slot), m.value);
            slots.touch(slot);
            model.delete(key);
            model.set(key, m);
          }
        } else if (op < 0.9) {
          const slot = slots.slotOf(key);
          if (slot >= 0) slots.remove(slot);
          model.delete(key);
        } else {
          // Replace a value and size in place: recency stays.
          const slot = slots.slotOf(key);
          const m = model.get(key);
          if (slot >= 0 && m !== undefined) {
            const size = 1 + Math.floor(r() * 60);
            slots.replace(slot, -step, size);
            model.set(key, { value: -step, size });
          }
        }
        assert.equal(slots.count, model.size);
        assert.equal(slots.bytes, [...model.values()].reduce((n, v) => n + v.size, 0), `seed ${seed} step ${step}: bytes`);
      }
      assert.deepEqual([...slots.keys()], [...model.keys()].reverse(), `seed ${seed}: order`);
    }
  });
});

describe('MemoryStore: packed and hot entries', () => {
  test('an entry read again after HOT_ENTRIES others were read is an equal copy; what is counted follows its form and returns to the packed size', () => {
    const store = new MemoryStore({ maxSize: 64 * 1024 * 1024 });
    const keyOf = (i: number): string => `example.com/p/${i}`;
    for (let i = 0; i <= HOT_ENTRIES; i++) store.set(keyOf(i), entry({ url: `/p/${i}`, body: Buffer.from(`body ${i}`) }));
    const packedBytes = store.size().bytes;
    const first = store.get(keyOf(0))!;
    assert.equal(store.get(keyOf(0)), first, 'hot: the same object on every read');
    assert.ok(store.size().bytes > packedBytes, 'an unpacked entry is charged more');
    for (let i = 1; i <= HOT_ENTRIES; i++) store.get(keyOf(i));
    const again = store.get(keyOf(0))!;
    assert.notEqual(again, first, 'packed again, then unpacked anew');
    assert.deepEqual(again, first);
    assert.equal(again.body.toString(), 'body 0');
    // Every entry read once more pushes the others out of the ring: all packed but the last HOT_ENTRIES read.
    for (let i = 1; i <= HOT_ENTRIES; i++) store.get(keyOf(i));
    const sizes = store.size();
    assert.equal(sizes.entries, HOT_ENTRIES + 1);
    store.close();
    assert.deepEqual(store.size(), { entries: 0, bytes: 0 });
  });

  test('unpacking never changes which entry is evicted: the least recently used goes first, packed or not', () => {
    const one = new MemoryStore({ maxSize: 1 << 20 });
    one.set('a', entry({ body: Buffer.alloc(1000) }));
    const each = one.size().bytes;
    one.get('a');
    const hot = one.size().bytes;
    assert.ok(hot > each);
    const left: string[] = [];
    const maxSize = hot + 2 * each + 10;
    const store = new MemoryStore({ maxSize, onEvict: (key, e) => left.push(`${key}:${e.body.length}`) });
    store.set('a', entry({ body: Buffer.alloc(1000) }));
    store.set('b', entry({ body: Buffer.alloc(1000) }));
    store.set('c', entry({ body: Buffer.alloc(1000) }));
    assert.ok(store.get('a') !== undefined);
    assert.deepEqual(left, [], 'a hot entry and two packed ones fit');
    // 'b' is the least recently used: it leaves, not 'a' (read last) though 'a' is charged more.
    store.set('d', entry({ body: Buffer.alloc(1000) }));
    assert.deepEqual(left, ['b:1000'], 'the listener gets the packed entry unpacked');
    assert.deepEqual([...store.keys()], ['d', 'a', 'c']);
    assert.ok(store.size().bytes <= maxSize);
    // Unpacking an entry that no longer fits beside the others makes the least recent leave.
    const gone: string[] = [];
    const tight = new MemoryStore({ maxSize: 3 * each + 10, onEvict: (key) => gone.push(key) });
    for (const k of ['x', 'y', 'z']) tight.set(k, entry({ body: Buffer.alloc(1000) }));
    assert.ok(tight.get('z') !== undefined);
    assert.ok(tight.size().bytes <= 3 * each + 10);
    assert.equal(tight.has('z'), true);
    // x leaves when z hot and two packed do not fit, y too when z hot and one packed do not.
    const expected = [...(hot + 2 * each > 3 * each + 10 ? ['x'] : []), ...(hot + each > 3 * each + 10 ? ['y'] : [])];
    assert.ok(expected.length > 0, 'the case is not vacuous');
    assert.deepEqual(gone, expected);
  });

  test('store() says whether the entry was kept: over maxEntrySize it is not, and an older entry under its key is dropped', () => {
    const store = new MemoryStore({ maxSize: 1 << 20, maxEntrySize: 2000 });
    assert.equal(store.store('k', entry({ body: Buffer.alloc(100) })), true);
    assert.equal(store.store('k', entry({ body: Buffer.alloc(5000) })), false);
    assert.equal(store.get('k'), undefined);
    assert.deepEqual(store.size(), { entries: 0, bytes: 0 });
  });

  test('peek neither unpacks in place nor changes recency', () => {
    const one = new MemoryStore({ maxSize: 1 << 20 });
    one.set('probe', entry());
    const each = one.size().bytes;
    const store = new MemoryStore({ maxSize: each * 2 + 10 });
    store.set('a', entry({ url: '/x' }));
    store.set('b', entry());
    const bytes = store.size().bytes;
    assert.equal(store.peek('a')?.url, '/x');
    assert.equal(store.size().bytes, bytes, 'still packed');
    store.set('c', entry());
    assert.equal(store.has('a'), false, "'a' was still the least recently used");
  });

  test('hotEntries: 0 keeps none unpacked (every read an equal copy, counted as packed); a bad value is refused naming the option', () => {
    const store = new MemoryStore({ maxSize: 1 << 20, hotEntries: 0 });
    store.set('a', entry({ body: Buffer.from('x') }));
    const bytes = store.size().bytes;
    const one = store.get('a')!;
    const two = store.get('a')!;
    assert.notEqual(one, two);
    assert.deepEqual(one, two);
    assert.equal(store.size().bytes, bytes, 'nothing kept unpacked');
    const two3 = new MemoryStore({ maxSize: 1 << 20, hotEntries: 2 });
    for (const k of ['a', 'b', 'c']) two3.set(k, entry());
    const a = two3.get('a');
    two3.get('b');
    assert.equal(two3.get('a'), a, 'two hot: a stays');
    two3.get('c');
    assert.notEqual(two3.get('a'), a, 'a third read pushed a out');
    // Counted bytes follow the form: back to the packed size once an entry cools.
    const single = new MemoryStore({ maxSize: 1 << 20, hotEntries: 1 });
    single.set('a', entry());
    single.set('b', entry());
    const packed = single.size().bytes;
    single.get('a');
    const aHot = single.size().bytes;
    assert.ok(aHot > packed);
    single.get('b');
    assert.equal(single.size().bytes, aHot, 'a packed again, b hot: the same total for entries of one size');
    single.delete('b');
    single.set('b', entry());
    assert.equal(single.size().bytes, packed, 'both packed: the packed total again');
    assert.throws(() => new MemoryStore({ maxSize: 1000, hotEntries: -1 }), (e: Error) => e instanceof RangeError && /options\.hotEntries/.test(e.message) && /-1/.test(e.message));
    assert.throws(() => new MemoryStore({ maxSize: 1000, hotEntries: 'many' as unknown as number }), (e: Error) => e instanceof TypeError && /options\.hotEntries/.test(e.message));
  });

  test('seeded random set/get/peek/delete with a small hot ring: reads return what was stored, evictions take the least recently used, the budget holds (100 seeds)', () => {
    let total = 0;
    for (let seed = 1; seed <= 100; seed++) {
      const r = rng(seed);
      // Reference: what each kept key holds, in recency order (oldest first).
      const model = new Map<string, Entry>();
      const evicted: string[] = [];
      const maxSize = 4_000 + Math.floor(r() * 8_000);
      const store = new MemoryStore({
        maxSize,
        hotEntries: Math.floor(r() * 4),
        onEvict: (key) => {
          const oldest = model.keys().next().value;
          assert.equal(key, oldest, `seed ${seed}: the least recently used leaves first`);
          model.delete(key);
          evicted.push(key);
        },
      });
      for (let step = 0; step < 400; step++) {
        const key = `example.com/p/${Math.floor(r() * 12)}`;
        const op = r();
        const where = `seed ${seed} step ${step} ${key}`;
        if (op < 0.4) {
          const e = randomEntry(r, key);
          e.expiresAt = Date.now() + 3_600_000;
          model.delete(key);
          model.set(key, e);
          if (!store.store(key, e)) model.delete(key);
          assert.ok(store.size().bytes <= maxSize, `${where}: ${store.size().bytes} > ${maxSize}`);
        } else if (op < 0.75) {
          // Read: the key is the most recent before anything the read makes leave (unpacking it may).
          const want = model.get(key);
          if (want !== undefined) {
            model.delete(key);
            model.set(key, want);
          }
          assert.deepEqual(store.get(key), want, where);
          // Over budget only while the entry just read, unpacked, is all there is.
          assert.ok(store.size().bytes <= maxSize || store.size().entries === 1, `${where}: ${store.size().bytes} > ${maxSize} after a read`);
        } else if (op < 0.9) {
          assert.deepEqual(store.peek(key), model.get(key), `${where} (peek)`);
        } else {
          store.delete(key);
          model.delete(key);
        }
        assert.equal(store.size().entries, model.size, where);
        assert.deepEqual([...store.keys()], [...model.keys()].reverse(), `${where}: recency order`);
      }
      total += evicted.length;
    }
    assert.ok(total > 100, `the budget is small enough that entries are evicted (${total})`);
  });
});
