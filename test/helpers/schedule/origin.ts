/**
 * The origin of a schedule: a `(req, res)` handler that does, on its n-th render of a key, what
 * the plan drew for it, and logs every render: when it began, for whom, what it sent. Every body
 * names its render, key, user, the invalidation generation current when the render began and the
 * behaviour (`R12|/s/a|u1|g2|private|...`), then filler bytes that differ per render, so a mixed,
 * shifted or truncated body is recognised.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { Readable, pipeline } from 'node:stream';
import type { Clock, Stamp } from './clock.js';
import { tagOf, type Behaviour, type Plan, type RenderSpec } from './plan.js';

/** Who may be given a render's response. */
export type Audience =
  /** Anyone: the origin declared it shareable and wrote nothing personal. */
  | 'shared'
  /** Only the request it was rendered for (private, Set-Cookie, no-store, a page for a user). */
  | 'owner'
  /** The request it was rendered for and requests waiting at the same time (an error without freshness). */
  | 'concurrent'
  /** Nobody: no response came (throw, hang). */
  | 'none';

/** One render, as the origin saw and did it. */
export interface RenderRecord {
  id: number;
  key: string;
  /** Its rank among the key's renders (from 0). */
  n: number;
  spec: RenderSpec;
  behaviour: Behaviour;
  /** `anon`, or the user its cookie or Authorization speaks for. */
  user: string;
  /** The client request it ran for (its `x-req`), undefined for a background render. */
  forReq: number | undefined;
  /** Invalidations issued before it began. */
  generation: number;
  begin: Stamp;
  headersAt?: Stamp;
  end?: Stamp;
  /** Status it sent (undefined: none). */
  status?: number;
  /** The whole body it meant to send. */
  body: Buffer;
  etag: string;
  audience: Audience;
  /** It ended its response (all bytes written). */
  completed: boolean;
  /** The If-None-Match it answered 304 to. */
  notModified?: string;
  /** max-age it declared (s), when shareable. */
  maxAge?: number;
  /**
   * The longest time (ms) between two of its writes (headers, chunks, end), as it happened: on a
   * loaded machine a slow stream's gap can grow past the idle bound, and the cache rightly
   * treats it as stalled. Infinity for a render that stops writing (hang, stall).
   */
  maxGap: number;
}

/** Identity a request speaks for. */
export function userOf(req: IncomingMessage): string {
  const auth = req.headers.authorization;
  if (auth !== undefined) return auth.replace(/^Bearer /, '');
  const cookie = req.headers.cookie;
  const sid = cookie === undefined ? undefined : /(?:^|;\s*)sid=([^;]+)/.exec(cookie)?.[1];
  return sid ?? 'anon';
}

/** The body of a render. */
export function bodyOf(r: Pick<RenderRecord, 'id' | 'key' | 'user' | 'generation' | 'behaviour'>, length: number): Buffer {
  const head = `R${r.id}|${r.key}|${r.user}|g${r.generation}|${r.behaviour}|`;
  const out = Buffer.alloc(Math.max(length, head.length + 1));
  out.write(head, 'latin1');
  for (let i = head.length; i < out.length; i++) out[i] = 97 + ((r.id * 7 + i) % 26);
  out[out.length - 1] = 0x0a;
  return out;
}

/** The render id an ETag names (`"b12"`), or undefined. */
export function renderOfEtag(etag: string | undefined): number | undefined {
  const m = etag === undefined ? null : /^(?:W\/)?"b(\d+)"$/.exec(etag.trim());
  return m === null ? undefined : Number(m[1]);
}

export class ScheduleOrigin {
  readonly renders: RenderRecord[] = [];
  readonly #plan: Plan;
  readonly #clock: Clock;
  readonly #generation: () => number;
  readonly #counts = new Map<string, number>();
  readonly #open = new Set<ServerResponse>();
  readonly #timers = new Set<NodeJS.Timeout>();
  #closed = false;

  constructor(plan: Plan, clock: Clock, generation: () => number) {
    this.#plan = plan;
    this.#clock = clock;
    this.#generation = generation;
  }

  /** The handler the cache wraps. */
  readonly handler = (req: IncomingMessage, res: ServerResponse): unknown => {
    const key = (req.url ?? '/').split('?')[0]!;
    const n = this.#counts.get(key) ?? 0;
    this.#counts.set(key, n + 1);
    const spec = this.#plan.render(key, n);
    const xreq = req.headers['x-req'];
    const user = userOf(req);
    const personalRequest = req.headers.cookie !== undefined || req.headers.authorization !== undefined;
    const inm = req.headers['if-none-match'];
    const behaviour: Behaviour = spec.behaviour === 'not-modified' && inm === undefined ? 'ok' : spec.behaviour;
    const id = this.renders.length + 1;
    const personal = behaviour === 'private' || behaviour === 'set-cookie' || (behaviour === 'personal' && user !== 'anon');
    const r: RenderRecord = {
      id,
      key,
      n,
      spec,
      behaviour,
      user: personal || behaviour === 'personal' ? user : 'anon',
      forReq: typeof xreq === 'string' ? Number(xreq) : undefined,
      generation: this.#generation(),
      begin: this.#clock.now(),
      body: Buffer.alloc(0),
      etag: `"b${id}"`,
      audience: audienceOf(behaviour, personal || (behaviour === 'personal' && personalRequest)),
      completed: false,
      maxGap: behaviour === 'hang' || behaviour === 'stall' ? Infinity : 0,
    };
    r.body = bodyOf(r, spec.length);
    this.renders.push(r);
    res.on('error', () => undefined);
    const headers: Record<string, string | number> = {
      'content-type': 'text/plain',
      'x-render': String(id),
      etag: r.etag,
      'surrogate-key': `${tagOf(key)} all`,
    };
    const shareable = (): void => {
      headers['cache-control'] = `public, max-age=${spec.maxAge}`;
      r.maxAge = spec.maxAge;
    };
    switch (behaviour) {
      case 'ok':
        shareable();
        return this.#send(r, res, 200, headers);
      case 'personal':
        if (r.audience === 'shared') r.maxAge = 60; // defaultTtl
        return this.#send(r, res, 200, headers);
      case 'private':
        headers['cache-control'] = 'private, max-age=60';
        return this.#send(r, res, 200, headers);
      case 'set-cookie':
        headers['cache-control'] = 'public, max-age=60';
        headers['set-cookie'] = `sid=new${id}; Path=/`;
        return this.#send(r, res, 200, headers);
      case 'no-store':
        headers['cache-control'] = 'no-store';
        return this.#send(r, res, 200, headers);
      case 'error-fresh':
        headers['cache-control'] = 'public, max-age=1';
        r.maxAge = 1;
        return this.#send(r, res, spec.status, headers);
      case 'error':
        return this.#send(r, res, spec.status, headers);
      case 'not-modified': {
        shareable();
        r.notModified = Array.isArray(inm) ? inm.join(', ') : inm;
        r.status = 304;
        r.headersAt = this.#clock.now();
        const validated = renderOfEtag(r.notModified);
        res.writeHead(304, { 'cache-control': String(headers['cache-control']), etag: r.notModified ?? '', 'x-render': String(id), 'x-validated': String(validated ?? '') });
        res.end();
        r.completed = true;
        r.end = this.#clock.now();
        return undefined;
      }
      case 'throw':
        r.end = this.#clock.now();
        if (spec.rejects) return Promise.reject(new Error(`planned throw in render ${id}`));
        throw new Error(`planned throw in render ${id}`);
      case 'hang':
        this.#open.add(res);
        return undefined;
      case 'stall':
        shareable();
        this.#open.add(res);
        this.#head(r, res, 200, headers);
        res.write(r.body.subarray(0, 10));
        return undefined;
      case 'stop':
      case 'slow':
        shareable();
        return this.#stream(r, res, headers);
    }
  };

  #head(r: RenderRecord, res: ServerResponse, status: number, headers: Record<string, string | number>): void {
    r.status = status;
    r.headersAt = this.#clock.now();
    if (r.spec.contentLength || (r.behaviour !== 'stall' && r.behaviour !== 'stop' && r.behaviour !== 'slow')) headers['content-length'] = r.body.length;
    res.writeHead(status, headers);
  }

  #send(r: RenderRecord, res: ServerResponse, status: number, headers: Record<string, string | number>): undefined {
    this.#head(r, res, status, headers);
    res.end(r.body);
    r.completed = true;
    r.end = this.#clock.now();
    return undefined;
  }

  /** Streams the body in 8 chunks, `spec.gap` ms apart: `slow` to the end, `stop` until its client leaves. */
  #stream(r: RenderRecord, res: ServerResponse, headers: Record<string, string | number>): undefined {
    this.#head(r, res, 200, headers);
    const size = Math.ceil(r.body.length / 8);
    const chunks: Buffer[] = [];
    for (let i = 0; i < r.body.length; i += size) chunks.push(r.body.subarray(i, i + size));
    const done = (completed: boolean): void => {
      if (r.end !== undefined) return;
      r.completed = completed;
      r.end = this.#clock.now();
    };
    if (r.behaviour === 'stop' && r.spec.pipeline) {
      const wait = (ms: number): Promise<void> => new Promise((resolve) => this.#later(resolve, ms));
      const gap = r.spec.gap;
      const source = Readable.from(
        (async function* () {
          let last = performance.now();
          for (const chunk of chunks) {
            await wait(gap);
            const now = performance.now();
            r.maxGap = Math.max(r.maxGap, now - last);
            last = now;
            yield chunk;
          }
        })(),
      );
      pipeline(source, res, (error) => done(error === undefined || error === null));
      return undefined;
    }
    let i = 0;
    let last = performance.now();
    const step = (): void => {
      const now = performance.now();
      r.maxGap = Math.max(r.maxGap, now - last);
      last = now;
      if (this.#closed) return done(false);
      // `stop`: the handler notices its client left and returns without ending the response.
      if (r.behaviour === 'stop' && res.destroyed) return done(false);
      const chunk = chunks[i++];
      if (chunk === undefined) {
        res.end();
        return done(true);
      }
      res.write(chunk);
      this.#later(step, r.spec.gap);
    };
    step();
    return undefined;
  }

  #later(fn: () => void, ms: number): void {
    if (this.#closed) return;
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      fn();
    }, ms);
    this.#timers.add(timer);
  }

  /** Ends what never ends by itself (hung and stalled renders, streams): after the schedule. */
  close(): void {
    this.#closed = true;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    for (const res of this.#open) res.destroy();
    this.#open.clear();
  }
}

function audienceOf(behaviour: Behaviour, personal: boolean): Audience {
  if (personal || behaviour === 'no-store') return 'owner';
  if (behaviour === 'error') return 'concurrent';
  if (behaviour === 'throw' || behaviour === 'hang') return 'none';
  return 'shared';
}
