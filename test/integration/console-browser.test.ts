/**
 * The operator console in a real browser: Debian's headless Chromium driven by playwright-core
 * against a running cache. The page loads without console errors, shows the numbers
 * `cache.stats()` reports after known traffic, and a flush submitted from its form makes the page
 * a MISS (checked with a plain HTTP request afterwards). A screenshot is written to the test's
 * temp dir. Without Chromium the test is reported skipped, never passed.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { chromium } from 'playwright-core';
import { createCache } from '../../src/index.js';
import { closedAfterFile, listen, request } from '../helpers/http.js';
import { missing } from '../helpers/requires.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const TOKEN = 'console-test-token-0123456789';
const tracked = closedAfterFile();

test('the console shows what cache.stats() counts, and its flush form makes a page a MISS', { timeout: 120_000 }, async (t) => {
  if (!existsSync(CHROMIUM)) {
    missing(`chromium not installed: no ${CHROMIUM}`);
    t.skip(`chromium not installed: no ${CHROMIUM} (apt-get install -y chromium, or set CHROMIUM_PATH)`);
    return;
  }
  const cache = createCache({ flush: { token: TOKEN } });
  tracked.caches.push(cache);
  const renders = new Map<string, number>();
  const app = await listen(
    cache.wrap((req, res) => {
      const n = (renders.get(req.url ?? '') ?? 0) + 1;
      renders.set(req.url ?? '', n);
      res.writeHead(200, { 'content-type': 'text/html', 'cache-control': 'public, max-age=3600' });
      res.end(`<p>${req.url} render ${n}</p>`);
    }),
  );
  tracked.servers.push(app);
  const ops = await listen(cache.consoleHandler());
  tracked.servers.push(ops);

  // Known traffic: /page is a miss then 3 hits, /other a miss, a POST passes.
  for (let i = 0; i < 4; i++) await request(`${app.url}/page`);
  await request(`${app.url}/other`);
  await request(`${app.url}/form`, { method: 'POST' });
  assert.equal((await request(`${app.url}/page`)).headers['x-cache'], 'HIT');
  const stats = cache.stats();
  assert.deepEqual([stats.hits, stats.misses, stats.passes, stats.entries], [4, 2, 1, 2]);

  const profile = mkdtempSync(join(tmpdir(), 'strata-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    // The browser's login prompt, answered with the flush token as the password.
    httpCredentials: { username: 'ops', password: TOKEN },
    viewport: { width: 1280, height: 1000 },
  });
  t.after(() => context.close());
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error' || msg.type() === 'warning') problems.push(`${msg.type()}: ${msg.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`));

  const response = await page.goto(`${ops.url}/`);
  assert.equal(response?.status(), 200);
  await page.waitForSelector('body[data-loaded="true"]', { timeout: 30_000 });
  const text = async (selector: string): Promise<string> => ((await page.textContent(selector)) ?? '').trim();
  assert.equal(await text('.card [data-stat="hits"]'), String(stats.hits));
  assert.equal(await text('.card [data-stat="misses"]'), String(stats.misses));
  assert.equal(await text('.card [data-stat="passes"]'), String(stats.passes));
  assert.equal(await text('.card [data-stat="entries"]'), String(stats.entries));
  assert.equal(await text('#hit-ratio'), `${((100 * stats.hits) / (stats.hits + stats.misses)).toFixed(1)}%`);
  assert.equal(await text('td[data-counter="stores"]'), String(stats.stores));
  assert.equal(await text('td[data-counter="bytes"]'), stats.bytes.toLocaleString('en-US'));
  assert.match(await text('#tiers'), /memory\s*2/);

  // Flush /page from the form, hard: the next request must render it again.
  await page.fill('textarea[name="paths"]', '/page');
  await page.check('input[name="mode"][value="hard"]');
  await page.click('button[type="submit"]');
  await page.waitForSelector('#flush-result.ok', { timeout: 30_000 });
  assert.match(await text('#flush-result'), /^flush #1 applied/);
  const after = await request(`${app.url}/page`);
  assert.equal(after.headers['x-cache'], 'MISS');
  assert.equal(after.body, '<p>/page render 2</p>');
  assert.equal((await request(`${app.url}/other`)).headers['x-cache'], 'HIT');
  assert.equal(cache.stats().flushes, 1);
  // The page lists the invalidation it made.
  await page.waitForSelector('#events td:text-is("/page")', { timeout: 30_000 });
  assert.match(await text('#events'), /invalidation\s*hard\s*\/page/);

  const shot = join(profile, 'console.png');
  await page.screenshot({ path: shot, fullPage: true });
  assert.ok(statSync(shot).size > 10_000, 'screenshot written');
  t.diagnostic(`screenshot: ${shot}`);
  assert.deepEqual(problems, []);
});
