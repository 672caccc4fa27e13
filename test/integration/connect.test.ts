/**
 * Connect: the shared adapter scenarios with `app.use(cache.middleware({ app }))` (Connect sets
 * no `req.app`, so background renders need the app passed in), plus what happens without it.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import connect from 'connect';
import { createCache, type StrataCache } from '../../src/index.js';
import { adapterSuite, assertHit, assertStatus } from '../helpers/adapter-suite.js';
import { listen, request, sleep } from '../helpers/http.js';
import { runNodePlan, type Origin } from '../helpers/origin.js';

function connectApp(cache: StrataCache, origin: Origin, withApp: boolean): connect.Server {
  const app = connect();
  app.use(withApp ? cache.middleware({ app }) : cache.middleware());
  // Connect does not await promises: a rejected render goes to next(err) by hand.
  app.use((req: connect.IncomingMessage, res: import('node:http').ServerResponse, next: connect.NextFunction) => {
    runNodePlan(origin, req, res).catch(next);
  });
  // An error handler as apps have one: 500 before the headers, a cut connection after them.
  app.use((_error: unknown, _req: connect.IncomingMessage, res: import('node:http').ServerResponse, _next: connect.NextFunction) => {
    if (res.headersSent) res.destroy();
    else {
      res.statusCode = 500;
      res.end('Internal Server Error');
    }
  });
  return app;
}

adapterSuite('Connect', (cache, origin) => listen(connectApp(cache, origin, true)), { answersThrows: true });

describe('Connect specifics', { timeout: 15_000 }, () => {
  test('without { app }, a stale entry is re-rendered in the foreground instead of served STALE', async (t) => {
    const cache = createCache();
    let renders = 0;
    const app = connect();
    app.use(cache.middleware());
    app.use((_req: connect.IncomingMessage, res: import('node:http').ServerResponse) => {
      renders++;
      res.setHeader('cache-control', 'max-age=1, stale-while-revalidate=30');
      res.end(`connect v${renders}`);
    });
    const running = await listen(app);
    t.after(async () => {
      await running.close();
      await cache.close();
    });
    await request(`${running.url}/swr`);
    assertHit(await request(`${running.url}/swr`), 'connect v1');
    await sleep(1_100);
    const after = await request(`${running.url}/swr`);
    assert.equal(after.body, 'connect v2');
    assertStatus(after, 'MISS');
    assert.equal(renders, 2);
  });

  test('middleware({ app }) refuses an app that is not a function', () => {
    assert.throws(() => createCache().middleware({ app: 'app' as never }), TypeError);
  });
});
