/**
 * A plain static origin (`python3 -m http.server`: only Last-Modified, and a 304 that repeats no
 * validator) behind createProxy() + cache.wrap(): a stale entry is revalidated with its own
 * If-Modified-Since and the bare 304 refreshes it (RFC 9111 §4.3.4), so requests end in HIT /
 * REVALIDATED and the origin renders once; a file changed on disk is picked up at the next
 * revalidation. Date is mocked in this process to cross lifetimes; the origin keeps real time.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, mock, test } from 'node:test';
import { createCache, createProxy, type CacheOptions } from '../../src/index.js';
import { closedAfterFile, listen, request } from '../helpers/http.js';

const tracked = closedAfterFile();

/** A `python3 -m http.server` child on a free 127.0.0.1 port, and the statuses it logged. */
interface Python {
  url: string;
  child: ChildProcess;
  /** The status of every request it answered, in order ("200", "304"). */
  statuses: string[];
}

/** Waits (real time, whatever Date says) until `condition` holds; false after `ms`. */
async function settled(condition: () => boolean, ms = 5_000): Promise<boolean> {
  const deadline = performance.now() + ms;
  while (!condition()) {
    if (performance.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 5));
  }
  return true;
}

async function startPython(dir: string): Promise<Python> {
  // Port 0: the server picks a free port and prints it (-u: unbuffered).
  const child = spawn('python3', ['-u', '-m', 'http.server', '0', '--bind', '127.0.0.1', '--directory', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  const statuses: string[] = [];
  let log = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    log += chunk;
    const lines = log.split('\n');
    log = lines.pop()!;
    for (const line of lines) {
      const m = /" (\d{3}) /.exec(line);
      if (m !== null) statuses.push(m[1]!);
    }
  });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`python3 -m http.server exited (${code}): ${out}`)));
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      const m = /port (\d+)/.exec(out);
      if (m !== null) resolve(Number(m[1]));
    });
  });
  return { url: `http://127.0.0.1:${port}`, child, statuses };
}

describe('a python3 -m http.server origin behind the cache', { timeout: 30_000 }, () => {
  let dir = '';
  let python: Python;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'stratacache-static-'));
    python = await startPython(dir);
  });
  after(async () => {
    python.child.kill();
    await rm(dir, { recursive: true, force: true });
  });
  afterEach(() => mock.timers.reset());

  /** Writes `name` with a modification time `agoS` seconds ago (real time). */
  async function file(name: string, body: string, agoS: number): Promise<void> {
    await writeFile(join(dir, name), body);
    const at = (Date.now() - agoS * 1000) / 1000;
    await utimes(join(dir, name), at, at);
  }

  async function proxy(options: CacheOptions): Promise<string> {
    const cache = createCache(options);
    const running = await listen(cache.wrap(createProxy({ upstream: python.url })));
    tracked.servers.push(running);
    tracked.caches.push(cache);
    return running.url;
  }

  /** The statuses the origin logged since `from`, once the last request's line is in. */
  async function originSince(from: number, count: number): Promise<string[]> {
    assert.equal(await settled(() => python.statuses.length >= from + count), true, `the origin logged ${count} requests`);
    return python.statuses.slice(from);
  }

  test('defaultTtl: the bare 304 refreshes the entry; HIT again, one render', async () => {
    await file('a.html', '<p>a v1</p>', 3600);
    const url = await proxy({});
    mock.timers.enable({ apis: ['Date'], now: Date.now() });
    const from = python.statuses.length;
    const miss = await request(`${url}/a.html`);
    assert.equal(miss.headers['x-cache'], 'MISS');
    assert.equal(miss.body, '<p>a v1</p>');
    assert.equal((await request(`${url}/a.html`)).headers['x-cache'], 'HIT');
    mock.timers.tick(61_000);
    const revalidated = await request(`${url}/a.html`);
    assert.equal(revalidated.headers['x-cache'], 'REVALIDATED');
    assert.equal(revalidated.body, '<p>a v1</p>');
    const hit = await request(`${url}/a.html`);
    assert.equal(hit.headers['x-cache'], 'HIT', 'fresh again after the 304');
    assert.equal(hit.body, '<p>a v1</p>');
    mock.timers.tick(61_000);
    assert.equal((await request(`${url}/a.html`)).headers['x-cache'], 'REVALIDATED');
    assert.equal((await request(`${url}/a.html`)).headers['x-cache'], 'HIT');
    assert.deepEqual(await originSince(from, 3), ['200', '304', '304'], 'one render, then two bare 304s');
  });

  test('heuristic freshness from Last-Modified after the 304; a changed file is picked up', async () => {
    // Modified 1000 s ago: fresh for 10% of that, 100 s (RFC 9111 §4.2.2).
    await file('b.html', '<p>b v1</p>', 1000);
    const url = await proxy({ heuristicFreshness: 0.1, defaultTtl: 0 });
    mock.timers.enable({ apis: ['Date'], now: Date.now() });
    const from = python.statuses.length;
    assert.equal((await request(`${url}/b.html`)).headers['x-cache'], 'MISS');
    mock.timers.tick(50_000);
    assert.equal((await request(`${url}/b.html`)).headers['x-cache'], 'HIT', 'heuristically fresh');
    mock.timers.tick(60_000);
    assert.equal((await request(`${url}/b.html`)).headers['x-cache'], 'REVALIDATED');
    const hit = await request(`${url}/b.html`);
    assert.equal(hit.headers['x-cache'], 'HIT', 'the 304 gave it heuristic freshness again');
    assert.equal(hit.body, '<p>b v1</p>');
    assert.deepEqual(await originSince(from, 2), ['200', '304']);
    // Changed on disk (a later modification time): the next revalidation gets the new file.
    await file('b.html', '<p>b v2</p>', 500);
    mock.timers.tick(200_000);
    const changed = await request(`${url}/b.html`);
    assert.equal(changed.body, '<p>b v2</p>');
    assert.notEqual(changed.headers['x-cache'], 'STALE');
    const after2 = await request(`${url}/b.html`);
    assert.equal(after2.headers['x-cache'], 'HIT');
    assert.equal(after2.body, '<p>b v2</p>');
    assert.deepEqual(await originSince(from, 3), ['200', '304', '200']);
  });
});
