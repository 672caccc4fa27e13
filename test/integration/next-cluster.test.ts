/**
 * stratacache/next for real: one `next build` of examples/next-cluster (Next 16, cacheComponents,
 * its cacheHandler and cacheHandlers both in cache-handler.mjs), served by two custom-server
 * processes (examples/next-cluster/server.ts: `cache.wrap` in front of Next, and Next alone on a
 * second port) sharing one real redis-server. The page /posts shows which instance rendered its
 * 'use cache: remote' data and how many times (`posts A 1`).
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { NO_REDIS, startRedis, type RedisServer } from '../helpers/redis.js';

const run = promisify(execFile);
const bin = (name: string): string => new URL(`../../node_modules/.bin/${name}`, import.meta.url).pathname;
const env = { ...process.env, NEXT_TELEMETRY_DISABLED: '1' };

/** One instance: `wrap` is cache.wrap in front of Next, `next` Next alone (its own cache only). */
interface Instance {
  name: string;
  wrap: string;
  next: string;
  child: ChildProcess;
}

let redis: RedisServer | undefined;
const instances: Instance[] = [];

async function startInstance(name: string, redisUrl: string): Promise<Instance> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'examples/next-cluster/server.ts'], {
    env: { ...env, NODE_NAME: name, REDIS_URL: redisUrl, PORT: '0', DIRECT_PORT: '0' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout!.setEncoding('utf8');
  const ready = new Promise<[string, string]>((resolve, reject) => {
    child.stdout!.on('data', (chunk: string) => {
      out += chunk;
      const m = /ready (\d+) (\d+)/.exec(out);
      if (m !== null) resolve([m[1]!, m[2]!]);
    });
    child.once('exit', (code) => reject(new Error(`instance ${name} exited with ${code}: ${out}`)));
  });
  const [wrap, next] = await ready;
  return { name, wrap: `http://127.0.0.1:${wrap}`, next: `http://127.0.0.1:${next}`, child };
}

before(async () => {
  redis = await startRedis();
  if (redis === undefined) return;
  // One production build, used by both instances (about 30 s alone; slower on a loaded machine).
  await run(bin('next'), ['build', 'examples/next-cluster'], { timeout: 300_000, env });
  instances.push(...(await Promise.all([startInstance('A', redis.url), startInstance('B', redis.url)])));
}, { timeout: 400_000 });

after(async () => {
  await Promise.all(
    instances.map(async ({ child }) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await once(child, 'exit');
      clearTimeout(timer);
    }),
  );
});

/** What a client sees of /posts. */
interface Seen {
  status: number;
  /** The page's heading: `posts <instance that rendered the data> <its render count>`. */
  page: string;
  /** Next's own verdict (`x-nextjs-cache`: HIT, MISS, STALE). */
  next: string | null;
  /** cache.wrap's verdict (`x-cache`), null for Next alone. */
  wrap: string | null;
  /** When the request was sent (ms, performance clock). */
  sentAt: number;
}

async function posts(base: string): Promise<Seen> {
  const sentAt = performance.now();
  const res = await fetch(`${base}/posts`, { signal: AbortSignal.timeout(60_000) });
  const html = await res.text();
  const page = (/<h1>(.*?)<\/h1>/.exec(html)?.[1] ?? html.slice(0, 60)).replaceAll('<!-- -->', '');
  return { status: res.status, page, next: res.headers.get('x-nextjs-cache'), wrap: res.headers.get('x-cache'), sentAt };
}

/** Asks `base` for /posts until `done` holds for what it answers (at most 50 requests, 100 ms apart). */
async function askUntil(base: string, done: (seen: Seen) => boolean): Promise<Seen[]> {
  const seen: Seen[] = [];
  for (let i = 0; i < 50; i++) {
    const s = await posts(base);
    seen.push(s);
    if (done(s)) return seen;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`never seen: ${JSON.stringify(seen.slice(-3))}`);
}

async function revalidate(base: string, query: string): Promise<number> {
  const res = await fetch(`${base}/api/revalidate?${query}`, { method: 'POST' });
  assert.equal(res.status, 200);
  await res.text();
  return performance.now();
}

test('an ISR page rendered on one instance is a hit on the other (Next alone and behind cache.wrap)', { timeout: 180_000 }, async (t) => {
  if (redis === undefined) return t.skip(NO_REDIS);
  const [a, b] = instances as [Instance, Instance];
  const first = await posts(a.next);
  assert.deepEqual([first.status, first.next, first.page], [200, 'MISS', 'posts A 1']);
  // B never rendered it: Next on B finds A's entry in Redis.
  const other = await posts(b.next);
  assert.deepEqual([other.status, other.next, other.page], [200, 'HIT', 'posts A 1']);
  // cache.wrap on B stores what its Next answered (under the page's tags), then answers itself.
  assert.deepEqual(Object.values(await posts(b.wrap)).slice(0, 4), [200, 'posts A 1', 'HIT', 'MISS']);
  assert.deepEqual((await posts(b.wrap)).wrap, 'HIT');
  // cache.wrap on A stores it too (its page was rendered there).
  await posts(a.wrap);
  assert.deepEqual([(await posts(a.wrap)).wrap, (await posts(a.wrap)).page], ['HIT', 'posts A 1']);
});

test('revalidateTag on one instance: the other serves a fresh page within a second, behind cache.wrap too (hard: expire 0)', { timeout: 180_000 }, async (t) => {
  if (redis === undefined) return t.skip(NO_REDIS);
  const [a, b] = instances as [Instance, Instance];
  const old = (await posts(b.wrap)).page;
  const at = await revalidate(a.wrap, 'tag=posts&hard=1');
  // Hard: no stale copy anywhere; the first fresh answer was asked for within a second.
  const onB = await askUntil(b.wrap, (s) => s.page !== old);
  for (const s of onB) assert.equal(s.status, 200);
  const fresh = onB.at(-1)!;
  assert.ok(fresh.sentAt - at < 1000, `B served the old page until ${Math.round(fresh.sentAt - at)} ms after the revalidation`);
  assert.equal(fresh.page, 'posts B 1', 'B rendered the data again');
  assert.equal(fresh.wrap, 'MISS');
  t.diagnostic(`fresh on B (cache.wrap) ${Math.round(fresh.sentAt - at)} ms after revalidateTag on A`);
  // A's own cache.wrap copy is gone as well; A and B now agree on the data in Redis.
  const onA = await posts(a.wrap);
  assert.equal(onA.page, 'posts B 1');
  assert.equal((await posts(b.next)).page, 'posts B 1');
});

test('revalidateTag with a profile (soft): each instance serves the old page while it renders again, then the new one', { timeout: 180_000 }, async (t) => {
  if (redis === undefined) return t.skip(NO_REDIS);
  const [a, b] = instances as [Instance, Instance];
  const old = (await posts(a.wrap)).page;
  assert.equal((await posts(a.wrap)).wrap, 'HIT');
  await revalidate(b.wrap, 'tag=posts');
  const onA = await askUntil(a.wrap, (s) => s.page !== old);
  // Stale while revalidating: the old page was answered (STALE) before the new one, never an error.
  assert.ok(onA.some((s) => s.page === old && s.wrap === 'STALE'), JSON.stringify(onA));
  for (const s of onA) assert.equal(s.status, 200);
  assert.match(onA.at(-1)!.page, /^posts [AB] \d+$/);
  assert.notEqual((await askUntil(b.wrap, (s) => s.page !== old)).at(-1)!.page, old);
});

test('stratacache flush --tag on one instance reaches Next entries on the other', { timeout: 180_000 }, async (t) => {
  if (redis === undefined) return t.skip(NO_REDIS);
  const [a, b] = instances as [Instance, Instance];
  // Next's own copy on B is fresh (the soft revalidation above is over there too).
  const before = (await askUntil(b.next, (s) => s.next === 'HIT')).at(-1)!;
  const { stdout } = await run(bin('tsx'), ['src/cli.ts', 'flush', '--tag', 'posts', '--hard', '--url', a.wrap], { env });
  assert.match(stdout, /posts/);
  // Next's own copy on B is gone: B's Next renders the data again instead of answering its HIT.
  const onB = await askUntil(b.next, (s) => s.next === 'MISS');
  assert.match(onB.at(-1)!.page, /^posts B \d+$/);
  assert.notEqual(onB.at(-1)!.page, before.page);
});

test('Redis killed mid-run: both instances keep answering, and catch up when it returns', { timeout: 120_000 }, async (t) => {
  if (redis === undefined) return t.skip(NO_REDIS);
  const [a, b] = instances as [Instance, Instance];
  await redis.kill();
  for (const base of [a.wrap, a.next, b.wrap, b.next, a.wrap, b.next]) {
    const s = await posts(base);
    assert.equal(s.status, 200);
    assert.match(s.page, /^posts [AB] \d+$/);
  }
  // A revalidation while Redis is down applies on A at once and waits in A's queue for B.
  const old = (await posts(b.next)).page;
  await revalidate(a.wrap, 'tag=posts&hard=1');
  const onA = await askUntil(a.next, (s) => s.next === 'MISS');
  assert.match(onA.at(-1)!.page, /^posts A \d+$/);
  await redis.restart();
  // Back: B hears of it (A's queued record, or the gap B notices in the stream) and renders anew.
  const onB = await askUntil(b.next, (s) => s.page !== old);
  assert.equal(onB.at(-1)!.status, 200);
  assert.match(onB.at(-1)!.page, /^posts B \d+$/);
});
