/**
 * The CDN area without sockets: EdgeGrid signatures against the test vectors of Akamai's own
 * client library (akamai/AkamaiOPEN-edgegrid-python testdata.json), the tag vocabulary (what a
 * stored response carries and what each invalidation purges), the providers' limits, and option
 * validation.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { edgeGridAuthorization, edgeGridTimestamp } from '../../src/cdn/edgegrid.js';
import { purgeRequest } from '../../src/cdn/purger.js';
import { entryTags, ownTag, purgeTags, resourceTag, statTag, TAG_LIMITS, tagHeaderWriter, treeTag, dataTag } from '../../src/cdn/tags.js';
import { resolveOptions } from '../../src/options/resolve.js';
import type { CacheOptions } from '../../src/options/types.js';
import { testEntry as entry } from '../helpers/entry.js';

const CREDENTIALS = { clientToken: 'akab-client-token-xxx-xxxxxxxxxxxxxxxx', clientSecret: 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx=', accessToken: 'akab-access-token-xxx-xxxxxxxxxxxxxxxx' };
const VECTOR = { timestamp: '20140321T19:34:21+0000', nonce: 'nonce-xx-xxxx-xxxx-xxxx-xxxxxxxxxxxx', maxBody: 2048 };
const BASE = 'https://akaa-baseurl-xxxxxxxxxxx-xxxxxxxxxxxxx.luna.akamaiapis.net';
const PREFIX = `EG1-HMAC-SHA256 client_token=${CREDENTIALS.clientToken};access_token=${CREDENTIALS.accessToken};timestamp=${VECTOR.timestamp};nonce=${VECTOR.nonce};signature=`;

describe('EdgeGrid signing', () => {
  test("matches the reference library's test vectors", () => {
    const sign = (method: string, path: string, body = '') => edgeGridAuthorization(CREDENTIALS, { method, url: new URL(path, BASE), body }, VECTOR);
    assert.equal(sign('GET', '/'), `${PREFIX}tL+y4hxyHxgWVD30X3pWnGKHcPzmrIF+LThiAOhMxYU=`);
    assert.equal(sign('GET', '/testapi/v1/t1?p1=1&p2=2'), `${PREFIX}hKDH1UlnQySSHjvIcZpDMbQHihTQ0XyVAKZaApabdeA=`);
    assert.equal(sign('POST', '/testapi/v1/t3', 'datadatadatadatadatadatadatadata'), `${PREFIX}hXm4iCxtpN22m4cbZb4lVLW5rhX8Ca82vCFqXzSTPe4=`);
    assert.equal(sign('POST', '/testapi/v1/t3', 'd'.repeat(3000)), `${PREFIX}6Q6PiTipLae6n4GsSIDTCJ54bEbHUBp+4MUXrbQCBoY=`, 'a body past max_body is hashed up to it');
    assert.equal(sign('POST', '/testapi/v1/t6'), `${PREFIX}1gEDxeQGD5GovIkJJGcBaKnZ+VaPtrc4qBUHixjsPCQ=`);
    assert.equal(sign('PUT', '/testapi/v1/t6', 'PPPPPPPPPPPPPPPPPPPPPPPPPPPPPPP'), `${PREFIX}GNBWEYSEWOLtu+7dD52da2C39aX/Jchpon3K/AmBqBU=`, 'only POST bodies are hashed');
  });

  test('timestamps are UTC yyyyMMddTHH:mm:ss+0000', () => {
    assert.equal(edgeGridTimestamp(new Date(Date.UTC(2014, 2, 21, 19, 34, 21))), '20140321T19:34:21+0000');
  });
});

describe('tags', () => {
  const paths = { statLevel: 1, autoInvalidate: (p: string) => p.endsWith('.html') };
  const limits = TAG_LIMITS.fastly;

  test('a stored response carries its path, own and data tags; each invalidation names the tags that reach it', () => {
    const tags = entryTags(entry({ url: '/shop/shoes/red.html?x=1', tags: ['product-7'], deps: ['price:7'] }), limits, paths);
    assert.deepEqual(tags, [treeTag(''), treeTag('/shop'), treeTag('/shop/shoes'), treeTag('/shop/shoes/red'), resourceTag('/shop/shoes/red'), statTag(''), statTag('/shop'), 'product-7', dataTag('price:7')]);
    // A tree invalidation of an ancestor, of the page, a resource-only one, a tag, the root (a flush).
    for (const [record, expected] of [
      [{ paths: ['/shop'], scope: 'tree' }, treeTag('/shop')],
      [{ paths: ['/shop/shoes/red.html'], scope: 'tree' }, treeTag('/shop/shoes/red')],
      [{ paths: ['/shop/shoes/red'], scope: 'resource' }, resourceTag('/shop/shoes/red')],
      [{ paths: ['/shop/hats/blue'], scope: 'tree' }, statTag('/shop')],
      [{ paths: ['/'], scope: 'tree' }, treeTag('')],
    ] as const) {
      const purged = purgeTags({ ...record, tags: [] }, limits, paths);
      assert.ok(purged.includes(expected), `${JSON.stringify(record)} -> ${purged.join(' ')}`);
      assert.ok(purged.some((t) => tags.includes(t)), 'reaches the entry');
    }
    assert.deepEqual(purgeTags({ paths: [], scope: 'tree', tags: ['product-7'] }, limits, paths), ['product-7']);
    assert.ok(!purgeTags({ paths: ['/other'], scope: 'tree', tags: [] }, limits, paths).some((t) => tags.includes(t)), 'a sibling tree does not reach it');
  });

  test("tags that a provider would refuse are hashed, and the provider's count and size limits hold", () => {
    assert.equal(ownTag('a:b', TAG_LIMITS.akamai).length, 23, 'a colon is not an Akamai tag character');
    assert.equal(ownTag('x'.repeat(129), TAG_LIMITS.akamai).length, 23);
    assert.equal(ownTag('x'.repeat(129), TAG_LIMITS.fastly), 'x'.repeat(129));
    const many = entry({ url: '/a', tags: Array.from({ length: 300 }, (_, i) => `tag-${i}`), deps: Array.from({ length: 100 }, (_, i) => `k${i}`) });
    assert.equal(entryTags(many, TAG_LIMITS.akamai, paths).length, 128);
    const big = entry({ url: '/a', tags: Array.from({ length: 300 }, (_, i) => `${'t'.repeat(100)}-${i}`) });
    assert.ok(entryTags(big, TAG_LIMITS.fastly, paths).join(' ').length <= 16_384);
    assert.equal(entryTags(many, TAG_LIMITS.fastly, paths).filter((t) => t.startsWith('scd')).length, 32, 'data tags are bounded');
  });

  test("the header writer keeps the origin's own tags in that header and is idempotent", () => {
    const write = tagHeaderWriter('cache-tag', TAG_LIMITS.cloudflare, paths);
    const e = entry({ url: '/p', tags: ['mine'], headers: [['cache-tag', 'origin-a,origin-b'], ['content-type', 'text/plain']] });
    write(e);
    const first = e.headers.find(([n]) => n === 'cache-tag')![1];
    assert.deepEqual(first.split(',').slice(-3), ['mine', 'origin-a', 'origin-b']);
    write(e);
    assert.equal(e.headers.filter(([n]) => n === 'cache-tag').length, 1);
    assert.equal(e.headers.find(([n]) => n === 'cache-tag')![1], first);
  });
});

describe('purge requests and options', () => {
  const cdn = (options: CacheOptions['cdn']) => resolveOptions({ cdn: options }).cdn!;

  test("each provider's documented request shape", () => {
    const f = purgeRequest(cdn({ provider: 'fastly', serviceId: 'SVC', token: 'tok' }), ['a', 'b']);
    assert.equal(f.url.href, 'https://api.fastly.com/service/SVC/purge');
    assert.equal(f.headers['fastly-key'], 'tok');
    assert.equal(f.headers['fastly-soft-purge'], '1');
    assert.deepEqual(JSON.parse(f.body), { surrogate_keys: ['a', 'b'] });
    assert.equal(purgeRequest(cdn({ provider: 'fastly', serviceId: 'SVC', token: 'tok', soft: false }), ['a']).headers['fastly-soft-purge'], undefined);
    const c = purgeRequest(cdn({ provider: 'cloudflare', zoneId: 'Z1', token: 'tok' }), ['a']);
    assert.equal(c.url.href, 'https://api.cloudflare.com/client/v4/zones/Z1/purge_cache');
    assert.equal(c.headers.authorization, 'Bearer tok');
    assert.deepEqual(JSON.parse(c.body), { tags: ['a'] });
    const a = purgeRequest(cdn({ provider: 'akamai', apiBase: BASE, ...CREDENTIALS, network: 'staging', soft: false }), ['a']);
    assert.equal(a.url.href, `${BASE}/ccu/v3/delete/tag/staging`);
    assert.match(a.headers.authorization!, /^EG1-HMAC-SHA256 client_token=akab-client-token-xxx-xxxxxxxxxxxxxxxx;access_token=.*;signature=[A-Za-z0-9+/]+=*$/);
    assert.deepEqual(JSON.parse(a.body), { objects: ['a'] });
  });

  test('bad CDN options are refused naming the field', () => {
    assert.throws(() => resolveOptions({ cdn: { provider: 'varnish' as 'fastly' } }), /options.cdn.provider/);
    assert.throws(() => resolveOptions({ cdn: { provider: 'fastly', token: 't' } }), /options.cdn.serviceId .*required for fastly/);
    assert.throws(() => resolveOptions({ cdn: { provider: 'cloudflare', zoneId: 'z' } }), /options.cdn.token/);
    assert.throws(() => resolveOptions({ cdn: { provider: 'akamai', ...CREDENTIALS } }), /options.cdn.apiBase .*required for Akamai/);
    assert.throws(() => resolveOptions({ cdn: { provider: 'header' } }), /options.cdn.header/);
    assert.throws(() => resolveOptions({ cdn: { provider: 'fastly', serviceId: 's', token: 't', tokn: 'x' } as never }), /unknown option options.cdn.tokn/);
    assert.equal(resolveOptions({ cdn: { provider: 'header', header: 'X-Tags' } }).cdn?.header, 'x-tags');
  });
});
