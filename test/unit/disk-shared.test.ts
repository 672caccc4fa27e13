/**
 * Several processes sharing one disk cache directory, as Node cluster workers do: each reads what
 * the others wrote, nobody ever reads a damaged or foreign entry while all of them rewrite the
 * same keys, and the rescans keep the directory near one shared byte budget.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';

const WORKER = fileURLToPath(new URL('../fixtures/disk-worker.ts', import.meta.url));

function runWorker(dir: string, id: number, workers: number, maxSize: number): Promise<{ written: number; ownRead: number; othersRead: number; sharedRead: number; bad: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', WORKER, dir, String(id), String(workers), String(maxSize)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`worker ${id} exited ${code}: ${err}`))));
  });
}

async function bytesUnder(dir: string): Promise<number> {
  let total = 0;
  for (const sub of await readdir(dir)) for (const name of await readdir(join(dir, sub))) total += (await stat(join(dir, sub, name))).size;
  return total;
}

test('three processes share a directory: they read each other’s entries, never a damaged one, within one budget', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'stratacache-shared-'));
  after(() => rm(dir, { recursive: true, force: true }));
  const maxSize = 100_000;
  const results = await Promise.all([0, 1, 2].map((id) => runWorker(dir, id, 3, maxSize)));
  for (const r of results) {
    assert.equal(r.bad, 0, 'no damaged, truncated or foreign entry was ever read');
    assert.equal(r.written, 30);
    assert.ok(r.ownRead >= 25, `a worker reads back its own writes (${r.ownRead}/30)`);
    assert.ok(r.sharedRead > 0, 'keys all workers rewrite are read whole');
  }
  assert.ok(results.reduce((n, r) => n + r.othersRead, 0) > 0, 'entries written by one process are found by the others');
  // About 210 kB were written in all, each worker alone below the budget: only the rescans,
  // which count every process's files, keep the directory near it.
  const held = await bytesUnder(dir);
  assert.ok(held <= maxSize * 1.3, `the directory holds ${held} bytes for a budget of ${maxSize}`);
});
