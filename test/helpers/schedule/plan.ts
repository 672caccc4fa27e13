/**
 * What one schedule does, drawn from its seed: the cache options, the clients' requests (kind,
 * key, user, when, whether and where they abort), the events interleaved with them (soft and hard
 * invalidation, PURGE, tags, refetching flush), and what the origin does on its n-th render of
 * each key. The plan is pure data: `run.ts` plays it against a real server, `model.ts` judges
 * what the clients got.
 */
import { mix, Random } from './random.js';

/** The keys clients ask for. `/t.html` is auto-invalidated by any tree invalidation (`autoInvalidate: ['*.html', ...]`). */
export const KEYS = ['/s/a', '/s/b', '/t.html'] as const;
export type Key = (typeof KEYS)[number];

/** The tag every response of a key carries (`Surrogate-Key`), besides `all`. */
export const tagOf = (key: string): string => `k${KEYS.indexOf(key as Key)}`;

/** Users a cookie or Authorization request speaks for. */
export const USERS = ['u1', 'u2', 'u3'] as const;

/**
 * What the origin does on one render:
 * - `ok`: 200, `public, max-age=M`, the same page for everyone;
 * - `personal`: 200 without Cache-Control, written for the requesting user (stored with
 *   `defaultTtl` only for an anonymous request);
 * - `private`: `private, max-age=60`, for the requesting user;
 * - `set-cookie`: `public, max-age=60` with `Set-Cookie`, for the requesting user;
 * - `no-store`: `no-store`;
 * - `error-fresh`: 500/502/503/504 with `public, max-age=1`;
 * - `error`: 500/502/503/504 without freshness;
 * - `throw`: the handler throws (or rejects) before writing anything;
 * - `hang`: never answers;
 * - `stall`: sends its headers and a few bytes, then nothing, ever;
 * - `stop`: streams slowly and stops when its client leaves (`if (res.destroyed) return`, or
 *   `pipeline(stream, res)`, which destroys its source when the client goes);
 * - `slow`: streams slowly to the end, whoever listens;
 * - `not-modified`: 304 to a conditional request (the cache revalidating), else as `ok`.
 */
export type Behaviour = 'ok' | 'personal' | 'private' | 'set-cookie' | 'no-store' | 'error-fresh' | 'error' | 'throw' | 'hang' | 'stall' | 'stop' | 'slow' | 'not-modified';

/** Kinds of client request. */
export type RequestKind = 'anon' | 'cookie' | 'auth' | 'head' | 'range' | 'inm';

/** Where a client gives up on its request (`none`: it reads the whole response). */
export type AbortPoint = 'none' | 'before-headers' | 'after-headers' | 'mid-body';

/** The weights behaviours are drawn with. */
export const BEHAVIOUR_WEIGHTS: Readonly<Record<Behaviour, number>> = Object.freeze({
  ok: 5,
  personal: 1,
  private: 1,
  'set-cookie': 1,
  'no-store': 1,
  'error-fresh': 0.7,
  error: 1,
  throw: 1,
  hang: 0.4,
  stall: 0.4,
  stop: 0.8,
  slow: 1,
  'not-modified': 1.5,
});

export const REQUEST_WEIGHTS: Readonly<Record<RequestKind, number>> = Object.freeze({ anon: 5, cookie: 1.5, auth: 1, head: 1, range: 1, inm: 1.5 });

/** Kinds of interleaved event. */
export type EventKind = 'soft' | 'hard' | 'purge' | 'tags' | 'refetch';

export const EVENT_WEIGHTS: Readonly<Record<EventKind, number>> = Object.freeze({ soft: 2, hard: 1, purge: 1, tags: 1, refetch: 1.5 });

/**
 * Behaviours, request kinds and events a schedule leaves out. Each is an open defect of issue
 * 18 whose engine fix has not landed yet (name the bullet beside it); the generator
 * covers everything else. Empty when every class passes.
 */
export interface Exclusions {
  behaviours: readonly Behaviour[];
  requests: readonly RequestKind[];
  events: readonly EventKind[];
  aborts: readonly AbortPoint[];
}

export const NO_EXCLUSIONS: Exclusions = Object.freeze({ behaviours: [], requests: [], events: [], aborts: [] });

/** What one render of a key does, with its details. */
export interface RenderSpec {
  behaviour: Behaviour;
  /** Status of `error` and `error-fresh`. */
  status: number;
  /** max-age (s) of `ok`, `not-modified`, `stall`, `stop`, `slow`. */
  maxAge: number;
  /** Body length (bytes). */
  length: number;
  /** Whether a streamed body declares its Content-Length (else chunked). */
  contentLength: boolean;
  /** `stop`: by `pipeline` from a stream (else a write loop checking `res.destroyed`). */
  pipeline: boolean;
  /** `throw`: by a rejected promise (else a synchronous throw). */
  rejects: boolean;
  /** Gap (ms) between streamed chunks. */
  gap: number;
}

export interface PlannedRequest {
  type: 'request';
  /** ms after the schedule starts. */
  at: number;
  id: number;
  key: Key;
  kind: RequestKind;
  /** The user a cookie or Authorization request speaks for. */
  user: string | undefined;
  abort: AbortPoint;
  /** `before-headers`: ms after sending. */
  abortAfter: number;
  /** `range`: first and last byte asked for. */
  range: [number, number];
}

export interface PlannedEvent {
  type: 'event';
  at: number;
  id: number;
  kind: EventKind;
  /** Path invalidated (`soft`, `hard`, `purge`, `refetch`). */
  path: string;
  scope: 'resource' | 'tree';
  /** `tags`. */
  tag: string;
}

export type Step = PlannedRequest | PlannedEvent;

/** The cache options a schedule varies (the rest are the defaults). */
export interface ScheduleOptions {
  originTimeout: number;
  gracePeriod: number;
  serveStaleOnError: boolean;
  passTtl: number;
  closeTimeout: number;
}

export interface Plan {
  seed: number;
  options: ScheduleOptions;
  steps: Step[];
  /** What the origin does on render `n` (from 0) of `key`. */
  render(key: string, n: number): RenderSpec;
}

/** Draws the plan of schedule `seed`, leaving out `exclusions`. */
export function planOf(seed: number, exclusions: Exclusions = NO_EXCLUSIONS): Plan {
  const rng = new Random(seed);
  const options: ScheduleOptions = {
    originTimeout: rng.pick([200, 300]),
    gracePeriod: rng.pick([0, 150, 5_000]),
    serveStaleOnError: rng.chance(0.6),
    passTtl: rng.pick([0, 200, 5_000]),
    closeTimeout: 300,
  };
  const behaviours = without(BEHAVIOUR_WEIGHTS, exclusions.behaviours);
  const kinds = without(REQUEST_WEIGHTS, exclusions.requests);
  const events = without(EVENT_WEIGHTS, exclusions.events);
  const aborts = without({ none: 10, 'before-headers': 1, 'after-headers': 1, 'mid-body': 1 } as Record<AbortPoint, number>, exclusions.aborts);
  const keys = KEYS.slice(0, rng.int(1, KEYS.length));
  const steps: Step[] = [];
  const span = rng.pick([150, 400, 700]);
  const requests = rng.int(4, 24);
  for (let id = 1; id <= requests; id++) {
    const kind = rng.weighted(kinds);
    const length = 200;
    const first = rng.int(0, length - 60);
    steps.push({
      type: 'request',
      at: rng.chance(0.3) ? 0 : rng.int(0, span),
      id,
      key: rng.pick(keys),
      kind,
      user: kind === 'cookie' || kind === 'auth' ? rng.pick(USERS) : undefined,
      abort: rng.weighted(aborts),
      abortAfter: rng.int(0, 150),
      range: [first, first + rng.int(0, 50)],
    });
  }
  const eventCount = Object.values<number>(events).some((w) => w > 0) ? rng.int(0, 3) : 0;
  for (let i = 0; i < eventCount; i++) {
    const kind = rng.weighted(events);
    const key = rng.pick(keys);
    const tree = kind !== 'refetch' && rng.chance(0.3);
    steps.push({
      type: 'event',
      at: rng.int(0, span),
      id: 1000 + i,
      kind,
      // A tree invalidation of the key's folder, or the key itself.
      path: tree ? '/s' : key,
      scope: tree ? 'tree' : rng.pick(['resource', 'tree'] as const),
      tag: rng.chance(0.5) ? 'all' : tagOf(key),
    });
  }
  steps.sort((a, b) => a.at - b.at || a.id - b.id);
  const cache = new Map<string, RenderSpec>();
  return {
    seed,
    options,
    steps,
    render(key, n) {
      const id = `${key} ${n}`;
      let spec = cache.get(id);
      if (spec === undefined) cache.set(id, (spec = renderSpec(new Random(mix(seed, KEYS.indexOf(key as Key), n)), behaviours)));
      return spec;
    },
  };
}

function renderSpec(rng: Random, behaviours: Record<Behaviour, number>): RenderSpec {
  return {
    behaviour: rng.weighted(behaviours),
    status: rng.pick([500, 502, 503, 504]),
    maxAge: rng.pick([1, 2, 30]),
    length: rng.int(200, 4_000),
    contentLength: rng.chance(0.5),
    pipeline: rng.chance(0.5),
    rejects: rng.chance(0.5),
    gap: rng.int(3, 25),
  };
}

function without<T extends string>(weights: Readonly<Record<T, number>>, excluded: readonly T[]): Record<T, number> {
  const out: Record<T, number> = { ...weights };
  for (const name of excluded) out[name] = 0;
  return out;
}
