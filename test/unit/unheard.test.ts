/**
 * Errors nobody listens to reach stderr once per distinct message per window, bounded; and a real
 * cache whose handler throws, with no `error` listener, says so once.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { HandlerError, StoreError } from '../../src/errors.js';
import { UnheardErrors } from '../../src/unheard.js';

describe('UnheardErrors', () => {
  test('one line per distinct message per window, with the cause and where it was thrown', () => {
    const lines: string[] = [];
    let now = 0;
    const unheard = new UnheardErrors({ write: (l) => lines.push(l), now: () => now, window: 60_000 });
    const boom = new Error('template missing');
    for (let i = 0; i < 5; i++) unheard.report(new HandlerError('handler threw', { cause: boom }));
    unheard.report(new StoreError('disk write failed', { cause: new Error('ENOSPC') }));
    assert.equal(lines.length, 2);
    assert.match(lines[0]!, /^stratacache: ERR_HANDLER: handler threw: template missing \(at .*unheard\.test\.ts:\d+:\d+\)\) \[no 'error' listener on the cache/);
    assert.match(lines[1]!, /^stratacache: ERR_STORE: disk write failed: ENOSPC/);
    // The same message again once the window has passed.
    now = 60_001;
    unheard.report(new HandlerError('handler threw', { cause: boom }));
    assert.equal(lines.length, 3);
  });

  test('at most maxLines lines per window, then one line saying how many were held back', () => {
    const lines: string[] = [];
    let now = 0;
    const unheard = new UnheardErrors({ write: (l) => lines.push(l), now: () => now, window: 1_000, maxLines: 3 });
    for (let i = 0; i < 10; i++) unheard.report(new HandlerError(`failure ${i}`));
    assert.equal(lines.length, 3);
    now = 1_000;
    unheard.report(new HandlerError('failure after'));
    assert.equal(lines[3], 'stratacache: 7 more error line(s) held back in the last 1 s');
    assert.match(lines[4]!, /failure after/);
  });

  test('a cache whose handler throws, with no error listener, writes it to stderr once', () => {
    const script = fileURLToPath(new URL('../helpers/throwing-handler.ts', import.meta.url));
    const r = spawnSync(process.execPath, ['--import', import.meta.resolve('tsx'), script], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, NODE_ENV: '', DEBUG: '' } });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /statuses: 500,500,500/);
    const lines = r.stderr.split('\n').filter((l) => l.includes('stratacache:'));
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, /ERR_HANDLER: .*render failed: no template for \/x/);
  });
});
