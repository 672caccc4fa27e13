/**
 * Bad input never crashes the process or poisons the cache: odd request targets, hostile headers
 * and raw malformed requests, sent over a real socket to a cached server.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { createCache } from '../../src/index.js';
import { listen, request } from '../helpers/http.js';

/** Writes raw bytes and returns whatever the server answered (or '' if it closed). */
function raw(port: number, bytes: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.end(bytes));
    let out = '';
    socket.on('data', (c: Buffer) => (out += c.toString('latin1')));
    socket.on('close', () => resolve(out));
    socket.on('error', () => resolve(out));
    socket.setTimeout(5_000, () => socket.destroy());
  });
}

test('odd targets and hostile headers are answered, and a normal page is unaffected', async (t) => {
  const cache = createCache({ ignoreUrlParams: ['utm_*'] });
  const running = await listen(
    cache.wrap((req, res) => {
      res.setHeader('cache-control', 'max-age=60');
      res.end(`page ${req.url}`);
    }),
  );
  t.after(async () => {
    await running.close();
    await cache.close();
  });
  const normal = await request(`${running.url}/normal`);
  assert.equal(normal.body, 'page /normal');

  const targets = [
    '/%',
    '/%zz?a=%zz&utm_x=%',
    '/?&&&=&=',
    '/a?' + 'x'.repeat(8000),
    '//double/slash',
    '/a#frag',
    'http://127.0.0.1/absolute-form?b=1',
    'http://[bad/absolute',
    '*',
    '/\u00e9t\u00e9',
  ];
  for (const target of targets) {
    const reply = await raw(running.port, `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
    assert.match(reply, /^HTTP\/1\.1 \d{3} /, `an answer for ${JSON.stringify(target)}`);
  }
  const hostile = [
    'Host: \r\n',
    'Host: EXAMPLE.com:80\r\n',
    'Host: a\r\nHost: b\r\n',
    'Host: 127.0.0.1\r\nVary: *\r\nAccept-Language: \u00ff\u00fe\r\n',
    'Host: 127.0.0.1\r\nIf-None-Match: ,,,"x",W/\r\nIf-Modified-Since: not a date\r\n',
    'Host: 127.0.0.1\r\nCache-Control: max-age=-1, no-store="\r\n',
    'Host: 127.0.0.1\r\nAuthorization: \r\n',
    'Host: 127.0.0.1\r\nX-Forwarded-Host: evil.example\r\nForwarded: host=evil\r\n',
  ];
  for (const headers of hostile) {
    const reply = await raw(running.port, `GET /normal HTTP/1.1\r\n${headers}Connection: close\r\n\r\n`);
    assert.match(reply, /^HTTP\/1\.1 \d{3} /, `an answer for ${JSON.stringify(headers)}`);
  }
  // Not a request at all.
  await raw(running.port, 'garbage\r\n\r\n');
  await raw(running.port, 'GET / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n');

  // The process is alive and the normal page is still the one first stored.
  const after = await request(`${running.url}/normal`);
  assert.equal(after.status, 200);
  assert.equal(after.headers['x-cache'], 'HIT');
  assert.equal(after.body, 'page /normal');
});
