/**
 * Takes docs/observability.md's picture of the operator console with Debian's headless Chromium.
 *   npx tsx examples/console.ts &      # let it run a minute or two so the charts fill
 *   npx tsx scripts/console-screenshot.ts http://127.0.0.1:9000/console/ docs/console.png
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const [url = 'http://127.0.0.1:9000/console/', out = 'docs/console.png'] = process.argv.slice(2);
const context = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'strata-shot-')), {
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  viewport: { width: 1280, height: 900 },
});
const page = await context.newPage();
await page.goto(url);
await page.waitForSelector('body[data-loaded="true"]');
await page.screenshot({ path: out, fullPage: false });
await context.close();
console.log(`wrote ${out}`);
