/**
 * The serve error log: one line per distinct cause a minute (by an injected clock), the count it
 * left out on the next line of that cause, and each request's cause kept for its access log line.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { test } from 'node:test';
import { UpstreamErrorLog } from '../../src/cli/error-log.js';
import type { UpstreamFailure } from '../../src/proxy/upstream.js';

const refused: UpstreamFailure = { cause: 'ECONNREFUSED', message: 'connect ECONNREFUSED 127.0.0.1:9', status: 502, method: 'GET', url: 'http://127.0.0.1:9/a' };
const timeout: UpstreamFailure = { cause: 'timeout', message: 'timed out (no response headers within 300 ms)', status: 504, method: 'GET', url: 'http://127.0.0.1:9/b' };
const req = (url: string): IncomingMessage => ({ url }) as IncomingMessage;

test('one line per cause per minute; the next line says how many were left out since', () => {
  const lines: string[] = [];
  let now = Date.UTC(2026, 11, 6, 19, 51, 2);
  const log = new UpstreamErrorLog((l) => lines.push(l), () => now);
  const first = req('/a');
  log.report(refused, first);
  log.report(timeout, req('/b'));
  for (let i = 0; i < 5; i++) {
    now += 10_000;
    log.report(refused, req('/a'));
  }
  assert.deepEqual(lines, [
    '2026/12/06 19:51:02 [error] upstream connect ECONNREFUSED 127.0.0.1:9 (answered 502), upstream: "http://127.0.0.1:9/a", request: "GET /a"',
    '2026/12/06 19:51:02 [error] upstream timed out (no response headers within 300 ms) (answered 504), upstream: "http://127.0.0.1:9/b", request: "GET /b"',
  ]);
  now += 10_000; // a minute after the first line
  log.report(refused, req('/c'));
  assert.equal(lines.length, 3);
  assert.match(lines[2]!, /^2026\/12\/06 19:52:02 \[error\] upstream connect ECONNREFUSED 127\.0\.0\.1:9 \(answered 502; 5 more like it since 19:51:02\), .*request: "GET \/c"$/);
  // A cut response is its own cause.
  log.report({ ...refused, cause: 'cut', message: 'response body cut short', status: undefined }, req('/d'));
  assert.match(lines[3]!, /upstream response body cut short \(response cut\)/);
  assert.equal(log.causeOf(first), 'connect ECONNREFUSED 127.0.0.1:9');
  assert.equal(log.causeOf(req('/other')), undefined);
});
