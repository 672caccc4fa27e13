/**
 * The refetch target index (src/invalidation/targets.ts): which hosts a host-less refetch path
 * resolves to. One host costs nothing per entry (the memory tier is asked); other hosts are
 * remembered per target; a path never stored, or evicted from memory, falls back to the flush's host.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Entry } from '../../src/entry.js';
import { TargetIndex } from '../../src/invalidation/targets.js';

/** An index over a fake engine: keys are host + path, the memory tier is a set of keys. */
function index(keyedByHost = true) {
  const memory = new Set<string>();
  const asked: string[] = [];
  const targets = new TargetIndex({
    normalize: (url) => (url.startsWith('/') ? url.split('#')[0] : undefined),
    primaryOf: (url, host) => `${host}${url.split('#')[0]}`,
    holds: (primary) => {
      asked.push(primary);
      return memory.has(primary);
    },
    keyedByHost,
  });
  /** Stores a page: into the memory tier, and told to the index as the engine does. */
  const store = (host: string, url: string) => {
    memory.add(`${host}${url}`);
    targets.remember({ url, host } as Entry);
  };
  const hosts = (urls: string[], fallback: string) => targets.resolve(urls, fallback).map((t) => `${t.host} ${t.url} ${t.primary}`);
  return { targets, memory, asked, store, hosts };
}

describe('TargetIndex', () => {
  test('one host: a path held in memory resolves to the host it was stored under, whatever the flush host', () => {
    const x = index();
    x.store('site.example', '/a.html');
    x.store('site.example', '/b.html');
    assert.deepEqual(x.hosts(['/a.html', '/b.html'], 'site.example'), ['site.example /a.html site.example/a.html', 'site.example /b.html site.example/b.html']);
    // A flush posted to another host (or the API, host ''): still the page's host.
    assert.deepEqual(x.hosts(['/a.html'], ''), ['site.example /a.html site.example/a.html']);
    assert.deepEqual(x.hosts(['/a.html'], '127.0.0.1:9000'), ['site.example /a.html site.example/a.html']);
    // The same page named twice (or by a fragment) is refetched once.
    assert.deepEqual(x.hosts(['/a.html', '/a.html#top'], ''), ['site.example /a.html site.example/a.html']);
  });

  test('two hosts: a path resolves to each host it was stored under, the site host first', () => {
    const x = index();
    x.store('site.example', '/a.html');
    x.store('www.example', '/a.html');
    x.store('www.example', '/only-www.html');
    x.store('www.example', '/a.html'); // stored again: counted once
    assert.deepEqual(x.hosts(['/a.html'], ''), ['site.example /a.html site.example/a.html', 'www.example /a.html www.example/a.html']);
    // Stored under the other host only: that host, not the site's, not the fallback.
    assert.deepEqual(x.hosts(['/only-www.html'], 'site.example'), ['www.example /only-www.html www.example/only-www.html']);
    // The site's copy evicted from memory: the other host is still known, so no fallback.
    x.memory.delete('site.example/a.html');
    assert.deepEqual(x.hosts(['/a.html'], 'site.example'), ['www.example /a.html www.example/a.html']);
  });

  test('at most 8 hosts per target, the site host included', () => {
    const x = index();
    for (let i = 0; i < 12; i++) x.store(`h${i}.example`, '/many');
    assert.deepEqual(
      x.targets.resolve(['/many'], '').map((t) => t.host),
      Array.from({ length: 8 }, (_, i) => `h${i}.example`),
    );
  });

  test('a path never stored falls back to the flush host', () => {
    const x = index();
    assert.deepEqual(x.hosts(['/never.html'], 'flush.example'), ['flush.example /never.html flush.example/never.html'], 'before anything was stored');
    x.store('site.example', '/a.html');
    assert.deepEqual(x.hosts(['/never.html'], 'flush.example'), ['flush.example /never.html flush.example/never.html']);
    assert.deepEqual(x.hosts(['/never.html'], 'site.example'), ['site.example /never.html site.example/never.html']);
  });

  test('a path evicted from memory falls back to the flush host: identical when that is the site host', () => {
    const x = index();
    x.store('site.example', '/gone.html');
    x.memory.delete('site.example/gone.html');
    assert.deepEqual(x.hosts(['/gone.html'], 'site.example'), ['site.example /gone.html site.example/gone.html']);
    assert.deepEqual(x.hosts(['/gone.html'], 'flush.example'), ['flush.example /gone.html flush.example/gone.html']);
  });

  test('absolute URLs name their host; the memory tier is not asked for them', () => {
    const x = index();
    x.store('site.example', '/a.html');
    x.asked.length = 0;
    assert.deepEqual(x.hosts(['http://other.example/a.html?x=1'], 'site.example'), ['other.example /a.html?x=1 other.example/a.html?x=1']);
    assert.deepEqual(x.asked, []);
  });

  test('a key without the host: nothing is remembered, every path takes the flush host', () => {
    const x = index(false);
    x.store('site.example', '/a.html');
    x.store('www.example', '/a.html');
    assert.deepEqual(x.hosts(['/a.html'], ''), [' /a.html /a.html']);
    assert.deepEqual(x.asked, [], 'the memory tier is not asked');
  });
});
