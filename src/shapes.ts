/**
 * Steady hidden classes for the requests and responses a prototype-changing handler renders.
 *
 * Express gives every request it renders the app's prototypes (`Object.setPrototypeOf(req,
 * app.request)`, the same for `res`) and its router then adds properties (`next`, `baseUrl`,
 * `params`, `res.locals`...). In V8 an object whose prototype changed gets a map outside any
 * transition tree, and each property added afterwards makes a map no other object shares, so every
 * render shows Node's http code (writeHead, end, _finish, resOnFinish...) new maps: after a few
 * renders its inline caches are megamorphic for the life of the process, and every hit pays for
 * that although a hit never runs the handler (docs/performance.md, "The Express hit gap").
 *
 * {@link steadyShapes} learns which own properties such a handler's renders add to `req` and `res`
 * and, before later renders, creates them (with the value the object already reads for them), so
 * the prototype change finds them in place: the prototype transition is cached by V8, no property
 * is added after it, and all renders of the handler share a few maps. Only keys the render would
 * read from the same object before and after the prototype change are created early (see
 * {@link admissible}), so what the handler reads and writes is unchanged; the one thing it could
 * see is the property being an own one (with the value it would have inherited) before it assigns it.
 * Handlers that never change a prototype are left alone.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

type Key = string | symbol;
type Handler = (req: IncomingMessage, res: ServerResponse) => unknown;

/** Own keys a render added to one object, learned across renders. */
class Learned {
  /** Keys to create before a render, in the order they were first seen. */
  readonly keys: Key[] = [];
  /** Keys seen and refused (see {@link admissible}). */
  readonly #refused = new Set<Key>();
  /** Keys to consider at the first learning even if not own yet (see {@link LATE}). */
  #seed: readonly Key[];
  /** The prototype the objects had before the handler ran (learned and prefilled only for it). */
  #origin: object | null | undefined;

  constructor(seed: readonly Key[]) {
    this.#seed = seed;
  }

  /** Creates the learned keys `target` lacks (no-op before anything was learned). */
  prefill(target: object): void {
    if (this.keys.length === 0 || Object.getPrototypeOf(target) !== this.#origin) return;
    const o = target as Record<Key, unknown>;
    for (const key of this.keys) {
      if (Object.hasOwn(o, key)) continue;
      const value = o[key];
      // Two differing stores first: the field is made mutable and untyped in the shared map, so
      // the handler's own stores later never change it (on a copied map that would be a new map).
      o[key] = 0;
      o[key] = null;
      o[key] = value;
    }
  }

  /**
   * Learns the own keys of `target` that are not in `before` (its keys when the render began,
   * when its prototype was `origin`).
   */
  learn(target: object, before: readonly Key[], origin: object | null): void {
    if (this.#origin === undefined) this.#origin = origin;
    else if (origin !== this.#origin) return;
    const now = Object.getPrototypeOf(target) as object | null;
    for (const key of this.#seed) this.#consider(key, admissible(key, now, origin));
    this.#seed = [];
    const keys = Reflect.ownKeys(target);
    if (keys.length === before.length) return;
    for (const key of keys) if (!before.includes(key)) this.#consider(key, plainOwn(target, key) && admissible(key, now, origin));
  }

  #consider(key: Key, ok: boolean): void {
    if (this.keys.includes(key) || this.#refused.has(key)) return;
    if (ok) this.keys.push(key);
    else this.#refused.add(key);
  }
}

/** An own property that an assignment would have created: writable, enumerable, configurable data. */
function plainOwn(target: object, key: Key): boolean {
  const d = Object.getOwnPropertyDescriptor(target, key);
  return d !== undefined && 'value' in d && d.writable === true && d.enumerable === true && d.configurable === true;
}

/** The object in the chain from `proto` up that defines `key`, or null. */
function ownerOf(proto: object | null, key: Key): object | null {
  for (let p = proto; p !== null; p = Object.getPrototypeOf(p) as object | null) if (Object.hasOwn(p, key)) return p;
  return null;
}

/**
 * Creating `key` before the render is invisible to it: the prototypes before (`origin`) and after
 * the handler changed them (`now`) read it from the same object (so the value created is the one
 * the render would have inherited: not the case for Express's own methods, which a middleware may
 * wrap), and that object defines it as a writable data property or not at all (an assignment
 * creates an own property, no setter runs, no getter is shadowed).
 */
function admissible(key: Key, now: object | null, origin: object | null): boolean {
  const owner = ownerOf(origin, key);
  if (ownerOf(now, key) !== owner) return false;
  if (owner === null) return true;
  const d = Object.getOwnPropertyDescriptor(owner, key)!;
  return 'value' in d && d.writable === true;
}

/**
 * Keys Node adds to a request or response only after its handler returned, typically after the
 * response finished: an emitter's listener count starts out inherited and becomes an own property
 * when a listener is removed (`req._dump()` on finish). A burst of renders all in flight before the
 * first one finishes could not have learned it from an earlier render.
 */
const LATE: readonly Key[] = ['_eventsCount'];

/** The last render's objects, learned from at the next render (what was added after it returned). */
interface Previous {
  req: WeakRef<IncomingMessage>;
  res: WeakRef<ServerResponse>;
  reqBefore: Key[];
  resBefore: Key[];
  reqProto: object | null;
  resProto: object | null;
}

/**
 * `handler`, keeping the maps of the `req`/`res` it renders steady when it changes their
 * prototypes (Express). The returned function returns what `handler` returns.
 */
export function steadyShapes(handler: Handler): Handler {
  const req = new Learned(LATE);
  const res = new Learned(LATE);
  /** The handler changed a prototype in a render: from then on its renders are prefilled. */
  let changes = false;
  /** The handler rendered once (its first render is always learned from). */
  let seen = false;
  let previous: Previous | undefined;
  const learnFrom = (p: Previous): void => {
    const q = p.req.deref();
    const s = p.res.deref();
    if (q !== undefined) req.learn(q, p.reqBefore, p.reqProto);
    if (s !== undefined) res.learn(s, p.resBefore, p.resProto);
  };
  return (q, s) => {
    const reqProto = Object.getPrototypeOf(q) as object | null;
    const resProto = Object.getPrototypeOf(s) as object | null;
    if (!changes && seen) {
      // A handler not seen changing a prototype in its first render costs two prototype reads
      // per render; one that changes them later is learned from its next render on.
      const result = handler(q, s);
      changes = Object.getPrototypeOf(q) !== reqProto || Object.getPrototypeOf(s) !== resProto;
      return result;
    }
    if (changes) {
      // What the last render's objects gained after its handler returned (Node's own later
      // additions, listener counters) is learned now, when it has most likely finished.
      if (previous !== undefined) learnFrom(previous);
      req.prefill(q);
      res.prefill(s);
    }
    // The first render is learned from too: its maps are the only ones no other render shares.
    const current: Previous = { req: new WeakRef(q), res: new WeakRef(s), reqBefore: Reflect.ownKeys(q), resBefore: Reflect.ownKeys(s), reqProto, resProto };
    seen = true;
    const result = handler(q, s);
    if (!changes) {
      changes = Object.getPrototypeOf(q) !== reqProto || Object.getPrototypeOf(s) !== resProto;
      if (!changes) return result;
    }
    learnFrom(current);
    previous = current;
    return result;
  };
}
