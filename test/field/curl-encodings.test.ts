/**
 * Field test: what `curl` sees through nginx in front of `stratacache serve` with compression on
 * (`"compress": true` in its config file): each client gets the coding it asked for (br, gzip,
 * or none), a compressed body decodes to the page, and an uncompressed request never gets a
 * compressed body; and every response of the entry, the MISS and identity ones included, says
 * `Vary: Accept-Encoding` (so a shared cache in front never serves br to a client without it).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, test } from 'node:test';
import { serveCli } from '../helpers/cli.js';
import { closedAfterFile, listen } from '../helpers/http.js';
import { startNginx } from '../helpers/nginx.js';
import { until } from '../helpers/origin.js';

const tracked = closedAfterFile();
const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'stratacache-curl-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** What curl received: status, headers (lower-case names) and the body (decoded with `--compressed`). */
async function curl(url: string, args: string[] = []): Promise<{ status: number; headers: Map<string, string>; body: string }> {
  const head = join(dir, `head-${Math.random().toString(36).slice(2)}`);
  const { stdout } = await run('curl', ['-sS', '-D', head, ...args, url], { encoding: 'buffer', maxBuffer: 16 * 1024 * 1024 });
  const lines = readFileSync(head, 'utf8').split('\r\n');
  const status = Number(/^HTTP\/[\d.]+ (\d{3})/.exec(lines[0] ?? '')?.[1]);
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers.set(line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim());
  }
  return { status, headers, body: stdout.toString('utf8') };
}

test('curl through nginx: br, gzip or identity as asked, bodies that decode to the page', { timeout: 120_000 }, async () => {
  const page = `<!doctype html><title>field</title>${'<p>compressible text, repeated. '.repeat(400)}`;
  let renders = 0;
  const origin = await listen((_req, res) => {
    renders++;
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'public, max-age=300' });
    res.end(page);
  });
  tracked.servers.push(origin);
  writeFileSync(join(dir, 'compress.json'), JSON.stringify({ compress: true }));
  const cache = await serveCli(['--config', join(dir, 'compress.json'), '--upstream', origin.url]);
  const nginx = await startNginx(
    1,
    ([listenOn]) => `
  server {
    listen ${listenOn};
    location / {
      proxy_pass ${cache.site};
      proxy_http_version 1.1;
      proxy_set_header Host $host;
    }
  }`,
  );
  const url = `${nginx.urls[0]!}/page`;

  const first = await curl(url, ['-H', 'Accept-Encoding: gzip']);
  assert.equal(first.status, 200, nginx.errors());
  assert.equal(first.headers.get('x-cache'), 'MISS');
  const VARY_RULE = 'Vary-on-every-response rule: every response of an entry that may have compressed variants says Vary: Accept-Encoding';
  assert.match(first.headers.get('vary') ?? '', /accept-encoding/i, `${VARY_RULE} (the MISS)`);
  const firstHit = await curl(url, ['-H', 'Accept-Encoding: gzip']);
  assert.match(firstHit.headers.get('vary') ?? '', /accept-encoding/i, `${VARY_RULE} (the first HIT, ${String(firstHit.headers.get('content-encoding'))})`);
  // The compressed variants are made in the background once the page is stored.
  assert.ok(await until(async () => (await curl(url, ['-H', 'Accept-Encoding: gzip'])).headers.get('content-encoding') === 'gzip', 20_000), 'a gzip HIT');
  assert.ok(await until(async () => (await curl(url, ['-H', 'Accept-Encoding: br'])).headers.get('content-encoding') === 'br', 20_000), 'a br HIT');

  for (const [asked, coding] of [['gzip', 'gzip'], ['br', 'br'], ['br;q=1, gzip;q=0.5', 'br'], ['gzip, br;q=0', 'gzip']] as const) {
    const r = await curl(url, ['-H', `Accept-Encoding: ${asked}`]);
    assert.equal(r.headers.get('content-encoding'), coding, asked);
    assert.equal(r.headers.get('x-cache'), 'HIT', asked);
    assert.match(r.headers.get('vary') ?? '', /accept-encoding/i, `a compressed response says Vary: Accept-Encoding (${asked})`);
    // curl decodes what it was sent: the page, byte for byte.
    const decoded = await curl(url, ['--compressed', '-H', `Accept-Encoding: ${asked}`]);
    assert.equal(decoded.body, page, asked);
  }
  for (const args of [[], ['-H', 'Accept-Encoding: identity'], ['-H', 'Accept-Encoding: gzip;q=0, br;q=0']]) {
    const plain = await curl(url, args);
    assert.equal(plain.headers.get('content-encoding'), undefined, args.join(' '));
    assert.match(plain.headers.get('vary') ?? '', /accept-encoding/i, `${VARY_RULE} (identity: ${args.join(' ')})`);
    assert.equal(plain.body, page, args.join(' '));
  }
  assert.equal(renders, 1);
  cache.child.kill('SIGTERM');
  assert.equal(await cache.exited, 0);
});
