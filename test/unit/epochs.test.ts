import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ancestor, depthOf, Epochs, resourcePath } from '../../src/invalidation/epochs.js';
import { InvalidationLog } from '../../src/invalidation/log.js';
import { globPredicate } from '../../src/options/validate.js';

const auto = globPredicate('autoInvalidate', ['*.html', '*.json']);
const entry = (url: string, storedAt: number, tags: string[] = []) => ({ url, storedAt, tags });

describe('resourcePath', () => {
  test('drops query, trailing slash, selectors and extension', () => {
    assert.equal(resourcePath('/content/site/en/page.html'), '/content/site/en/page');
    assert.equal(resourcePath('/content/site/en/page.model.json?x=1'), '/content/site/en/page');
    assert.equal(resourcePath('/content/site/en/'), '/content/site/en');
    assert.equal(resourcePath('/a.b/c'), '/a.b/c');
    assert.equal(resourcePath('/'), '');
  });
  test('ancestor and depth', () => {
    assert.equal(depthOf('/content/site/en/page'), 4);
    assert.equal(ancestor('/content/site/en/page', 2), '/content/site');
    assert.equal(ancestor('/content/site/en/page', 0), '');
    assert.equal(ancestor('/content', 5), '/content');
  });
});

describe('Epochs', () => {
  test('nothing invalidated: newest is 0 and every entry is valid', () => {
    const e = new Epochs({ statLevel: 0, autoInvalidate: auto });
    assert.equal(e.newest, 0);
    assert.equal(e.check(entry('/a.html', 1)), undefined);
  });

  test('statLevel 2: /content/site/en/page reaches globbed entries under /content/site only', () => {
    const e = new Epochs({ statLevel: 2, autoInvalidate: auto });
    e.record({ paths: ['/content/site/en/page'] }, 100);
    assert.deepEqual(e.check(entry('/content/site/en/page.html', 50)), { at: 100, hard: false });
    assert.deepEqual(e.check(entry('/content/site/fr/other.html', 50)), { at: 100, hard: false });
    assert.deepEqual(e.check(entry('/content/site/de/x.model.json', 50)), { at: 100, hard: false });
    assert.deepEqual(e.check(entry('/content/site.html', 50)), { at: 100, hard: false });
    // Not matching the globs: only its own path counts.
    assert.equal(e.check(entry('/content/site/fr/logo.png', 50)), undefined);
    assert.deepEqual(e.check(entry('/content/site/en/page/_jcr_content/image.png', 50)), { at: 100, hard: false });
    // Another subtree and the site root are untouched.
    assert.equal(e.check(entry('/content/other/page.html', 50)), undefined);
    assert.equal(e.check(entry('/index.html', 50)), undefined);
    // Stored after the invalidation (or at the same millisecond): valid.
    assert.equal(e.check(entry('/content/site/en/page.html', 100)), undefined);
  });

  test('statLevel 0 reaches every globbed entry; a shallow path marks its whole subtree', () => {
    const e0 = new Epochs({ statLevel: 0, autoInvalidate: auto });
    e0.record({ paths: ['/content/site/en/page'] }, 10);
    assert.ok(e0.check(entry('/content/other/page.html', 5)));
    assert.equal(e0.check(entry('/content/other/img.png', 5)), undefined);
    const e3 = new Epochs({ statLevel: 3, autoInvalidate: auto });
    e3.record({ paths: ['/content'] }, 10);
    assert.ok(e3.check(entry('/content/a/b/c/d.html', 5)));
    assert.ok(e3.check(entry('/content/a/b/c/d.png', 5)), 'tree scope reaches the subtree');
  });

  test('resource scope: only the resource, no auto-invalidation, no subtree', () => {
    const e = new Epochs({ statLevel: 0, autoInvalidate: auto });
    e.record({ paths: ['/content/site/en/page'], scope: 'resource' }, 10);
    assert.ok(e.check(entry('/content/site/en/page.html', 5)));
    assert.equal(e.check(entry('/content/site/en/page/child.html', 5)), undefined);
    assert.equal(e.check(entry('/content/site/fr.html', 5)), undefined);
  });

  test('no autoInvalidate globs: only own paths', () => {
    const e = new Epochs({ statLevel: 0, autoInvalidate: undefined });
    e.record({ paths: ['/a/b'] }, 10);
    assert.ok(e.check(entry('/a/b', 5)));
    assert.equal(e.check(entry('/a/c.html', 5)), undefined);
  });

  test('hard removal of the path; auto-invalidated neighbours stay soft', () => {
    const e = new Epochs({ statLevel: 1, autoInvalidate: auto });
    e.record({ paths: ['/content/site/old'], hard: true }, 10);
    assert.deepEqual(e.check(entry('/content/site/old.html', 5)), { at: 10, hard: true });
    assert.deepEqual(e.check(entry('/content/site/new.html', 5)), { at: 10, hard: false });
  });

  test('tags', () => {
    const e = new Epochs({ statLevel: 0, autoInvalidate: undefined });
    e.record({ tags: ['product-42'] }, 10);
    assert.deepEqual(e.check(entry('/p/42', 5, ['product-42', 'catalog'])), { at: 10, hard: false });
    assert.equal(e.check(entry('/p/43', 5, ['product-43'])), undefined);
    assert.equal(e.check(entry('/p/42', 10, ['product-42'])), undefined);
  });

  test('hard tags remove the tagged entries; a later soft one of the same tag does not undo it', () => {
    const e = new Epochs({ statLevel: 0, autoInvalidate: undefined });
    e.record({ tags: ['posts'], hard: true }, 10);
    assert.deepEqual(e.check(entry('/blog', 5, ['posts'])), { at: 10, hard: true });
    assert.equal(e.check(entry('/about', 5, ['pages'])), undefined);
    e.record({ tags: ['posts'] }, 20);
    assert.deepEqual(e.check(entry('/blog', 5, ['posts'])), { at: 10, hard: true });
    assert.deepEqual(e.check(entry('/blog', 15, ['posts'])), { at: 20, hard: false });
  });

  test('bounded: an evicted epoch folds into a floor, never forgotten', () => {
    const e = new Epochs({ statLevel: 0, autoInvalidate: undefined, maxEpochs: 2 });
    e.record({ paths: ['/a'] }, 10);
    e.record({ paths: ['/b'] }, 20);
    e.record({ paths: ['/c'] }, 30);
    assert.ok(e.size <= 2 * 2);
    // /a was evicted; entries older than it are still stale (conservatively, every entry is).
    assert.ok(e.check(entry('/a', 5)));
    assert.ok(e.check(entry('/z', 5)));
    assert.equal(e.check(entry('/z', 15)), undefined);
  });
});

describe('InvalidationLog', () => {
  test('ids increase by one, timestamps never decrease, since() returns what was missed', () => {
    const log = new InvalidationLog(3);
    const body = { origin: 'local' as const, paths: ['/a'], scope: 'tree' as const, hard: false, tags: [], refetch: [] };
    const a = log.append(body, 100);
    const b = log.append(body, 90); // clock went back
    const c = log.append(body, 120);
    assert.deepEqual([a.id, b.id, c.id], [1, 2, 3]);
    assert.deepEqual([a.at, b.at, c.at], [100, 100, 120]);
    assert.deepEqual(log.since(1).map((r) => r.id), [2, 3]);
    log.append(body, 130);
    assert.deepEqual(log.since(0).map((r) => r.id), [2, 3, 4]);
    assert.equal(log.lastId, 4);
  });
});
