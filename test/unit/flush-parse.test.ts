import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { clientFilter } from '../../src/invalidation/admin-guard.js';
import { parseFlush } from '../../src/invalidation/flush-endpoint.js';

const body = (text: string, maxLines = 100) => ({ text, maxLines });

describe('parseFlush (AEM dispatcher flush protocol)', () => {
  test('Activate with a refetch list', () => {
    const r = parseFlush(
      'POST',
      { 'cq-action': 'Activate', 'cq-handle': '/content/site/en/page', 'cq-path': '/content/site/en/page', 'content-type': 'application/octet-stream' },
      body('/content/site/en/page.html\n/content/site/en.html?x=1\r\n\n'),
    );
    assert.deepEqual(r, {
      action: 'activate',
      paths: ['/content/site/en/page'],
      tags: [],
      refetch: ['/content/site/en/page.html', '/content/site/en.html?x=1'],
      scope: 'tree',
      hard: false,
    });
  });
  test('Deactivate and Delete are hard; ResourceOnly scope', () => {
    const d = parseFlush('GET', { 'cq-action': 'Deactivate', 'cq-handle': '/a/b', 'cq-action-scope': 'ResourceOnly' }, body(''));
    assert.ok(!('status' in d));
    assert.equal(d.hard, true);
    assert.equal(d.scope, 'resource');
    const del = parseFlush('POST', { 'cq-action': 'Delete', 'cq-path': '/a/c' }, body(''));
    assert.ok(!('status' in del) && del.hard && del.paths[0] === '/a/c');
  });
  test('Test changes nothing', () => {
    assert.deepEqual(parseFlush('GET', { 'cq-action': 'Test' }, body('')), { action: 'test', paths: [], tags: [], refetch: [], scope: 'tree', hard: false });
  });
  test('malformed requests are 400 (405 for other methods)', () => {
    const cases: Array<[string, Record<string, string>, string, number]> = [
      ['POST', {}, '', 400],
      ['POST', { 'cq-action': 'Explode', 'cq-handle': '/a' }, '', 400],
      ['POST', { 'cq-action': 'Activate' }, '', 400],
      ['POST', { 'cq-action': 'Activate', 'cq-handle': 'content/a' }, '', 400],
      ['POST', { 'cq-action': 'Activate', 'cq-handle': '/a', 'cq-action-scope': 'Everything' }, '', 400],
      ['POST', { 'cq-action': 'Activate', 'cq-handle': '/a', 'content-type': 'text/plain' }, '/ok\nnot a uri\n', 400],
      ['POST', { 'cq-action': 'Activate', 'cq-handle': '/a', 'content-type': 'image/png' }, '/ok\n', 400],
      ['PUT', { 'cq-action': 'Activate', 'cq-handle': '/a' }, '', 405],
    ];
    for (const [method, headers, text, status] of cases) {
      const r = parseFlush(method, headers, body(text));
      assert.ok('status' in r, JSON.stringify(headers));
      assert.equal(r.status, status, JSON.stringify(headers));
    }
  });
  test('line count is bounded', () => {
    const lines = Array.from({ length: 4 }, (_, i) => `/p${i}.html`).join('\n');
    const r = parseFlush('POST', { 'cq-action': 'Activate', 'cq-handle': '/a', 'content-type': 'text/plain' }, body(lines, 3));
    assert.ok('status' in r && r.status === 400);
  });
  test('JSON form', () => {
    const r = parseFlush('POST', { 'content-type': 'application/json' }, body(JSON.stringify({ paths: ['/a'], tags: ['t1'], refetch: ['/a.html'] })));
    assert.deepEqual(r, { action: 'json', paths: ['/a'], tags: ['t1'], refetch: ['/a.html'], scope: 'tree', hard: false });
    for (const bad of ['{', '[]', '{}', '{"paths":"x"}', '{"paths":["x"]}', '{"tags":["a b"]}', '{"paths":["/a"],"hard":"yes"}']) {
      const e = parseFlush('POST', { 'content-type': 'application/json' }, body(bad));
      assert.ok('status' in e && e.status === 400, bad);
    }
  });
});

describe('clientFilter', () => {
  test('default loopback list, IPv4-mapped IPv6 forms included', () => {
    const allowed = clientFilter(['127.0.0.0/8', '::1']);
    assert.ok(allowed('127.0.0.1'));
    assert.ok(allowed('::ffff:127.0.0.1'));
    assert.ok(allowed('::1'));
    assert.ok(!allowed('10.0.0.1'));
    assert.ok(!allowed('::ffff:10.0.0.1'));
    assert.ok(!allowed('fe80::1'));
    assert.ok(!allowed(undefined));
  });
  test('CIDRs of both families and mapped entries in the list', () => {
    const allowed = clientFilter(['10.1.0.0/16', 'fd00::/8', '::ffff:192.168.1.5', '::ffff:172.16.0.0/108']);
    assert.ok(allowed('10.1.200.3'));
    assert.ok(!allowed('10.2.0.1'));
    assert.ok(allowed('fd12:3456::1'));
    assert.ok(!allowed('fe80::1'));
    assert.ok(allowed('192.168.1.5'));
    assert.ok(allowed('::ffff:192.168.1.5'));
    assert.ok(allowed('172.16.3.4'));
    assert.ok(!allowed('172.32.0.1'));
  });
});
