/**
 * `cache.wrap(expressApp)`: requests and responses born with the Express app's prototypes.
 *
 * Express gives every request it handles its app's prototypes (`Object.setPrototypeOf(req,
 * app.request)`, the same for `res`). In V8 as Node 20 ships it, an object whose prototype is
 * changed after it has properties moves to a map of its own, and every property added to it
 * afterwards (by Express's router, by Node when the response ends) makes yet another map that no
 * other object shares. So each request Express renders leaves new hidden classes at every
 * property access in Node's http code that touches it (`writeHead`, `_storeHeader`, `end`,
 * `_send`, `resOnFinish`, `_dump`, ...). After four or five misses those accesses are megamorphic
 * for good, and every later request pays for it, hits included, although a hit never runs
 * Express: counted by valgrind, a hit through `cache.wrap(expressApp)` took 1.35 times the
 * instructions of one through `cache.wrap(handler)`, most of the difference in V8's megamorphic
 * load and store stubs; with this, 1.11 (docs/performance.md, "The Express hit gap").
 *
 * The cure is for Express's prototype change to change nothing: requests and responses are
 * constructed with the app's prototypes already. For an Express app (its `request` and
 * `response` inherit from Node's), `expressAdopter()` makes two subclasses of Node's
 * IncomingMessage and ServerResponse whose prototypes sit in front of the app's (`app.request`
 * and `app.response` then point at them, so everything the app or the user put on the old
 * objects is still inherited), and the returned function, called on each request, hands them,
 * once per server, to the server the request came through. Only a server still using Node's own
 * classes is changed (one given its own `IncomingMessage`/`ServerResponse` option is left alone);
 * where the server's slots cannot be found the app works exactly as before. One thing differs: a
 * sub-app mounted before `cache.wrap(app)` inherits from the old `app.request`, so a property put on
 * `app.request` after `cache.wrap(app)` is not seen inside it (put extensions on before, as usual).
 */
import http, { type IncomingMessage } from 'node:http';

/** What `cache.wrap()` needs to know an Express (4 or 5) app: its handle and its two prototypes. */
interface ExpressApp {
  handle: unknown;
  request: object;
  response: object;
}

/** Per app: the prototypes it was given and the adopter that installs them (wrap called twice). */
const adopters = new WeakMap<object, (req: IncomingMessage) => void>();

/**
 * For an Express app, a function to call with each request before anything else (cheap once its
 * server has been given the app's classes); undefined for any other handler.
 */
export function expressAdopter(handler: unknown): ((req: IncomingMessage) => void) | undefined {
  if (!isExpressApp(handler)) return undefined;
  const known = adopters.get(handler);
  if (known !== undefined) return known;
  const Request = bornWith(class Request extends http.IncomingMessage {}, handler.request);
  const Response = bornWith(class Response extends http.ServerResponse {}, handler.response);
  handler.request = Request.prototype;
  handler.response = Response.prototype;
  const tried = new WeakSet<object>();
  const adopt = (req: IncomingMessage): void => {
    if (Object.getPrototypeOf(req) === Request.prototype) return;
    const server = (req.socket as { server?: unknown } | null)?.server;
    if (typeof server !== 'object' || server === null || tried.has(server)) return;
    tried.add(server);
    replaceClass(server, 'IncomingMessage', http.IncomingMessage, Request);
    replaceClass(server, 'ServerResponse', http.ServerResponse, Response);
  };
  adopters.set(handler, adopt);
  return adopt;
}

function isExpressApp(handler: unknown): handler is ExpressApp {
  if (typeof handler !== 'function') return false;
  const app = handler as unknown as Partial<ExpressApp>;
  return typeof app.handle === 'function' && isObject(app.request) && app.request instanceof http.IncomingMessage && isObject(app.response) && app.response instanceof http.ServerResponse;
}

function isObject(value: unknown): value is object {
  return typeof value === 'object' && value !== null;
}

/**
 * `cls` with its prototype in front of `proto` (so instances inherit all of it) and without its
 * own `constructor`, so `req.constructor` is still Node's class.
 */
function bornWith<T extends { prototype: object }>(cls: T, proto: object): T {
  Object.setPrototypeOf(cls.prototype, proto);
  Reflect.deleteProperty(cls.prototype, 'constructor');
  return cls;
}

/**
 * Node's http server keeps the classes it constructs each request and response with in two
 * symbol-keyed slots (`IncomingMessage`, `ServerResponse`, read per request). Replaced only when
 * the slot holds Node's own class.
 */
function replaceClass(server: object, slot: string, nodeClass: unknown, ours: unknown): void {
  const key = Object.getOwnPropertySymbols(server).find((symbol) => symbol.description === slot);
  const slots = server as Record<symbol, unknown>;
  if (key !== undefined && slots[key] === nodeClass) slots[key] = ours;
}
