/**
 * `http.createServer(cache.wrap(expressApp))` gives the server, on its first request, request and
 * response classes born with the app's prototypes (src/adapters/express.ts: Express's own
 * prototype change then changes nothing, which keeps Node's http code from going megamorphic and
 * slowing every hit). What an Express user sees must not change: status, headers (X-Powered-By
 * included), body on misses and hits, Express's request and response helpers, `app.request`
 * extensions, `instanceof` and `constructor`, and a server with its own classes left alone.
 */
import assert from 'node:assert/strict';
import http, { type IncomingMessage } from 'node:http';
import { describe, test } from 'node:test';
import express from 'express';
import { createCache } from '../../src/index.js';
import { assertHit, assertStatus } from '../helpers/adapter-suite.js';
import { listen, request, untilTestEnds } from '../helpers/http.js';

/** Express's final handler logs errors to stderr outside tests only; keep test output clean. */
process.env.NODE_ENV = 'test';

/** An Express app counting its renders, with a helper on `app.request` added before `cache.wrap`. */
function catalogue() {
  const app = express();
  const renders = { count: 0 };
  (app.request as { shelf?: () => string }).shelf = function shelf(this: express.Request) {
    return `shelf ${this.params.id ?? '-'}`;
  };
  app.use((_req, res, next) => {
    renders.count++;
    res.locals.seen = 'locals work';
    next();
  });
  app.get('/items/:id', (req, res) => {
    const extra = (req as unknown as { label?: () => string }).label;
    res
      .status(req.params.id === 'new' ? 201 : 200)
      .set('cache-control', 'max-age=60')
      .set('x-item', req.params.id)
      .type('text/plain')
      .send(
        [
          `item ${req.params.id}`,
          `q=${String(req.query.q ?? '')}`,
          `host=${req.get('host') === undefined ? 'none' : 'set'}`,
          `app=${req.app === app}`,
          String(res.locals.seen),
          (req as unknown as { shelf: () => string }).shelf(),
          extra === undefined ? 'no label' : extra.call(req),
          `instances=${req instanceof http.IncomingMessage && res instanceof http.ServerResponse}`,
          `constructors=${req.constructor === http.IncomingMessage && res.constructor === http.ServerResponse}`,
        ].join('\n'),
      );
  });
  return { app, renders };
}

describe('cache.wrap(expressApp): requests born with the app prototypes', { timeout: 20_000 }, () => {
  test('misses and hits answer as Express does, with the server using the app prototypes after its first request', async (t) => {
    const { app, renders } = catalogue();
    const cache = createCache();
    const server = http.createServer(cache.wrap(app));
    // Added after cache.wrap(app): still seen by every request.
    (app.request as { label?: () => string }).label = () => 'label added later';
    // Runs before the cache's listener: which prototype did the server construct the request with?
    const bornWithApp: boolean[] = [];
    server.prependListener('request', (req: IncomingMessage) => bornWithApp.push(Object.getPrototypeOf(req) === app.request));
    const { url } = untilTestEnds(t, await listen(server), cache);

    const expected = (id: string, q = '') =>
      [`item ${id}`, `q=${q}`, 'host=set', 'app=true', 'locals work', `shelf ${id}`, 'label added later', 'instances=true', 'constructors=true'].join('\n');

    const first = await request(`${url}/items/1?q=a`);
    assert.equal(first.status, 200);
    assert.equal(first.body, expected('1', 'a'));
    assert.equal(first.headers['x-powered-by'], 'Express');
    assert.equal(first.headers['x-item'], '1');
    assert.equal(first.headers['content-type'], 'text/plain; charset=utf-8');
    assert.equal(first.headers['cache-control'], 'max-age=60');
    assertStatus(first, 'MISS');

    const hit = await request(`${url}/items/1?q=a`);
    assertHit(hit, expected('1', 'a'));
    assert.equal(hit.headers['x-powered-by'], 'Express');
    assert.equal(hit.headers['x-item'], '1');
    assert.equal(hit.headers['content-type'], 'text/plain; charset=utf-8');
    assert.equal(hit.headers['cache-control'], 'max-age=60');

    // Misses after the first request render through requests the server built with the app's
    // prototypes: every Express helper still answers.
    const second = await request(`${url}/items/2`);
    assert.equal(second.status, 200);
    assert.equal(second.body, expected('2'));
    assertStatus(second, 'MISS');
    assertHit(await request(`${url}/items/2`), expected('2'));

    const created = await request(`${url}/items/new?q=b`);
    assert.equal(created.status, 201);
    assert.equal(created.body, expected('new', 'b'));
    const createdAgain = await request(`${url}/items/new?q=b`);
    assert.equal(createdAgain.status, 201);
    assert.equal(createdAgain.body, expected('new', 'b'));

    const missing = await request(`${url}/nowhere`);
    assert.equal(missing.status, 404);
    assert.match(missing.body, /Cannot GET \/nowhere/);

    assert.equal(renders.count, 4, 'two items, the 201 and the 404 rendered once each');
    assert.equal(bornWithApp[0], false, 'the first request was built before the server was seen');
    assert.deepEqual(bornWithApp.slice(1), bornWithApp.slice(1).map(() => true));
    assert.equal(bornWithApp.length, 7);
  });

  test('a server given its own request and response classes keeps them', async (t) => {
    const { app, renders } = catalogue();
    class OwnRequest extends http.IncomingMessage {}
    class OwnResponse extends http.ServerResponse {}
    const cache = createCache();
    const server = http.createServer({ IncomingMessage: OwnRequest, ServerResponse: OwnResponse }, cache.wrap(app));
    const classes: string[] = [];
    server.prependListener('request', (req: IncomingMessage, res: http.ServerResponse) => classes.push(`${req instanceof OwnRequest} ${res instanceof OwnResponse}`));
    const { url } = untilTestEnds(t, await listen(server), cache);

    const miss = await request(`${url}/items/9`);
    assert.equal(miss.status, 200);
    assert.match(miss.body, /^item 9\n/);
    assertStatus(miss, 'MISS');
    const hit = await request(`${url}/items/9`);
    assertHit(hit, miss.body);
    assert.equal(hit.headers['x-powered-by'], 'Express');
    assert.equal(renders.count, 1);
    assert.deepEqual(classes, ['true true', 'true true']);
  });

  test('the same app wrapped twice, and a plain handler, work as before', async (t) => {
    const { app, renders } = catalogue();
    const cache = createCache();
    const once = cache.wrap(app);
    const twice = cache.wrap(app);
    assert.notEqual(once, twice);
    const { url } = untilTestEnds(t, await listen(http.createServer(twice)), cache);
    const miss = await request(`${url}/items/3`);
    assert.equal(miss.status, 200);
    assert.match(miss.body, /^item 3\n/);
    assertHit(await request(`${url}/items/3`), miss.body);
    const again = await request(`${url}/items/4`);
    assert.match(again.body, /^item 4\n[\s\S]*\nno label\n/);
    assert.equal(renders.count, 2);

    const plain = createCache();
    let plainRenders = 0;
    const running = await listen(
      http.createServer(
        plain.wrap((req, res) => {
          plainRenders++;
          res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=60' });
          res.end(`plain ${req.url} ${Object.getPrototypeOf(req) === http.IncomingMessage.prototype}`);
        }),
      ),
    );
    untilTestEnds(t, running, plain);
    const p1 = await request(`${running.url}/x`);
    const p2 = await request(`${running.url}/x`);
    assert.equal(p1.body, 'plain /x true');
    assertHit(p2, 'plain /x true');
    assert.equal(plainRenders, 1);
  });
});
