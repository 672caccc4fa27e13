/**
 * steadyShapes (src/shapes.ts): a prototype-changing handler's renders share hidden classes, and
 * nothing the handler reads or writes changes; a handler that never changes a prototype is left
 * alone.
 */
import assert from 'node:assert/strict';
import { IncomingMessage, ServerResponse } from 'node:http';
import { describe, test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { steadyShapes } from '../../src/shapes.js';

setFlagsFromString('--allow-natives-syntax');
/** V8's own answer: do two objects have the same hidden class (map)? */
const haveSameMap = new Function('a', 'b', 'return %HaveSameMap(a, b)') as (a: object, b: object) => boolean;

/** A fresh request/response pair as Node's server makes one (no socket). */
function pair(): { req: IncomingMessage; res: ServerResponse } {
  const req = new IncomingMessage(null as never);
  req.url = '/';
  req.method = 'GET';
  return { req, res: new ServerResponse(req) };
}

const reqProto = Object.create(IncomingMessage.prototype) as Record<string, unknown>;
const resProto = Object.create(ServerResponse.prototype) as Record<string, unknown>;
Object.defineProperty(reqProto, 'query', { get: () => 'from the getter', configurable: true });

/** Does what Express's app.handle and router do to a request they render. */
function expressLike(req: IncomingMessage, res: ServerResponse): string {
  const q = req as unknown as Record<string, unknown>;
  const s = res as unknown as Record<string, unknown>;
  q.res = res;
  Object.defineProperty(q, 'hidden', { value: 1, enumerable: false, writable: true, configurable: true });
  Object.setPrototypeOf(req, reqProto);
  Object.setPrototypeOf(res, resProto);
  // What the render sees of properties it has not set yet: exactly what it would without the cache.
  const seen = `${String(s.locals)} ${String(q.params)} ${String(res.statusCode)} ${String(q.query)}`;
  if (!s.locals) s.locals = Object.create(null);
  q.next = () => undefined;
  q.baseUrl = '';
  q.params = { n: '1' };
  res.statusCode = 201;
  return seen;
}

describe('steadyShapes', () => {
  test('renders of a prototype-changing handler share maps, and see what they would without it', () => {
    const handler = steadyShapes(expressLike);
    const renders = Array.from({ length: 6 }, pair);
    const seen = renders.map(({ req, res }) => handler(req, res));
    // Without it, no two renders share a map (the cause of the Express hit gap).
    const bare = Array.from({ length: 2 }, pair);
    for (const { req, res } of bare) expressLike(req, res);
    assert.equal(haveSameMap(bare[0]!.req, bare[1]!.req), false);
    assert.equal(haveSameMap(bare[0]!.res, bare[1]!.res), false);
    // From the second render on (the first one shows the prototype change and the keys added).
    for (let i = 2; i < renders.length; i++) {
      assert.ok(haveSameMap(renders[i]!.req, renders[1]!.req), `req of render ${i}`);
      assert.ok(haveSameMap(renders[i]!.res, renders[1]!.res), `res of render ${i}`);
    }
    assert.deepEqual(seen, Array(6).fill('undefined undefined 200 from the getter'));
    for (const { req, res } of renders) {
      const q = req as unknown as Record<string, unknown>;
      assert.equal(q.query, 'from the getter', 'an accessor of the prototype is never shadowed');
      assert.deepEqual(q.params, { n: '1' });
      assert.equal(res.statusCode, 201);
      assert.equal(Object.getOwnPropertyDescriptor(q, 'hidden')?.enumerable, false, 'a non-enumerable property is left to the handler');
    }
  });

  test("a render that wraps one of the new prototype's methods still gets that method", () => {
    const proto = Object.create(ServerResponse.prototype) as Record<string, unknown>;
    proto.json = function json(this: ServerResponse, value: unknown): string {
      return `json ${JSON.stringify(value)}`;
    };
    // A logging middleware's pattern: keep the app's res.json, put a wrapper in its place.
    const handler = steadyShapes((_req, res) => {
      Object.setPrototypeOf(res, proto);
      const s = res as unknown as Record<string, (value: unknown) => string>;
      const original = s.json!;
      s.json = (value) => `logged ${original.call(res, value)}`;
      return s.json({ n: 1 });
    });
    for (let i = 0; i < 4; i++) {
      const { req, res } = pair();
      assert.equal(handler(req, res), 'logged json {"n":1}', `render ${i}`);
    }
  });

  test('a handler that never changes a prototype gets its objects untouched', () => {
    let seen: Array<Array<string | symbol>> = [];
    const handler = steadyShapes((req, res) => {
      seen = [Reflect.ownKeys(req), Reflect.ownKeys(res)];
      (req as unknown as Record<string, unknown>).added = true;
      res.statusCode = 204;
    });
    for (let i = 0; i < 4; i++) {
      const { req, res } = pair();
      const keys = [Reflect.ownKeys(req), Reflect.ownKeys(res)];
      handler(req, res);
      assert.deepEqual(seen, keys, `render ${i}: nothing is created before the handler runs`);
    }
  });

  test('returns what the handler returns, and a throw goes to the caller', async () => {
    const handler = steadyShapes(async (req, res) => {
      expressLike(req, res);
      return 'done';
    });
    for (let i = 0; i < 3; i++) {
      const { req, res } = pair();
      assert.equal(await handler(req, res), 'done');
    }
    const throwing = steadyShapes((req, res) => {
      expressLike(req, res);
      throw new Error('boom');
    });
    for (let i = 0; i < 3; i++) {
      const { req, res } = pair();
      assert.throws(() => throwing(req, res), /boom/);
    }
  });
});
