/**
 * Plays one schedule against a real server: a fresh cache in front of the schedule's origin
 * (`http.createServer(cache.wrap(origin.handler))` on 127.0.0.1:0), clients on a keep-alive
 * agent sending the planned requests at their times, the planned events interleaved, then
 * `close()`. Everything observed is recorded for the model; nothing is judged here.
 */
import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { createCache } from '../../../src/index.js';
import { Clock, LagMeter, type Stamp } from './clock.js';
import { allowed, check, GIVE_UP, waitBound, type Violation } from './model.js';
import { ScheduleOrigin, type RenderRecord } from './origin.js';
import { NO_EXCLUSIONS, planOf, type EventKind, type Exclusions, type Plan, type PlannedEvent, type PlannedRequest, type RequestKind, type ScheduleOptions } from './plan.js';
import { mix, Random } from './random.js';

/** What one client request got. */
export interface RequestRecord {
  id: number;
  key: string;
  kind: RequestKind;
  user: string | undefined;
  method: 'GET' | 'HEAD';
  /** Request headers sent (x-req, cookie, authorization, range, if-none-match). */
  sentHeaders: Record<string, string>;
  sent: Stamp;
  /** Response headers arrived. */
  response?: Stamp;
  /** The response ended, was cut, or the client gave up. */
  end?: Stamp;
  status?: number;
  headers?: IncomingHttpHeaders;
  body: Buffer;
  /**
   * `complete`: the whole response arrived (its Content-Length, or the last chunk);
   * `cut`: the connection ended inside the response or before any; `aborted`: the client left
   * as planned; `timeout`: nothing ended it within the wait bound (the client then left).
   */
  outcome: 'complete' | 'cut' | 'aborted' | 'timeout';
  error?: string;
  /** How late the event loop ran (ms) while it was under way: added to every bound. */
  lag: number;
}

/** One interleaved event. */
export interface EventRecord {
  id: number;
  kind: EventKind;
  path: string;
  scope: 'resource' | 'tree';
  tag: string;
  issued: Stamp;
  /** The call resolved (PURGE: its answer arrived). */
  done?: Stamp;
  /** A refetching flush: its `refetched` settled, with what it reported. */
  refetched?: { at: Stamp; ok: number; failed: number };
  error?: string;
}

/** Everything one schedule observed. */
export interface ScheduleRecord {
  plan: Plan;
  requests: RequestRecord[];
  renders: RenderRecord[];
  events: EventRecord[];
  /** How long `close()` took (ms), and whether it resolved at all within the bound. */
  close: { ms: number; settled: boolean; lag: number };
}

export interface ScheduleResult {
  seed: number;
  record: ScheduleRecord;
  violations: Violation[];
}

/** What a schedule drives: a StrataCache, or a test's fake of one. */
export interface CacheUnderTest {
  wrap(handler: (req: IncomingMessage, res: ServerResponse) => unknown): (req: IncomingMessage, res: ServerResponse) => void;
  invalidate(path: string, options: { scope: 'resource' | 'tree'; hard: boolean; refetch: boolean }): Promise<{ refetched: Promise<{ ok: number; failed: number }> }>;
  invalidateTags(tags: readonly string[]): Promise<unknown>;
  close(): Promise<void>;
}

/** The cache a schedule runs against by default: stratacache with the schedule's options. */
export function stratacache(options: ScheduleOptions): CacheUnderTest {
  const cache = createCache({
    originTimeout: options.originTimeout,
    gracePeriod: options.gracePeriod,
    serveStaleOnError: options.serveStaleOnError,
    passTtl: options.passTtl,
    closeTimeout: options.closeTimeout,
    // The data cache is not used here; its dependency index preallocates maxTrackedKeys slots
    // (100 000 by default), the largest cost of creating a cache thousands of times.
    data: { maxTrackedKeys: 1_000 },
  });
  // Handler throws are planned: counted by the cache, not printed.
  cache.on('error', () => undefined);
  return cache;
}

/** Runs schedule `seed` and judges it. */
export async function runSchedule(seed: number, at: { exclusions?: Exclusions; cache?: (options: ScheduleOptions) => CacheUnderTest } = {}): Promise<ScheduleResult> {
  const record = await play(planOf(seed, at.exclusions ?? NO_EXCLUSIONS), at.cache ?? stratacache);
  return { seed, record, violations: check(record) };
}

async function play(plan: Plan, make: (options: ScheduleOptions) => CacheUnderTest): Promise<ScheduleRecord> {
  const meter = LagMeter.acquire();
  try {
    return await playWith(plan, make(plan.options), meter);
  } finally {
    LagMeter.release();
  }
}

async function playWith(plan: Plan, cache: CacheUnderTest, meter: LagMeter): Promise<ScheduleRecord> {
  const clock = new Clock();
  const { options } = plan;
  const bound = waitBound(options);
  let issued = 0;
  const origin = new ScheduleOrigin(plan, clock, () => issued);
  const server = http.createServer(cache.wrap(origin.handler));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const requests: RequestRecord[] = [];
  const events: EventRecord[] = [];
  const pending: Promise<unknown>[] = [];
  const refetches: Promise<unknown>[] = [];
  const etags = new Map<string, string[]>();
  const started = Date.now();
  await Promise.all(
    plan.steps.map(
      (step) =>
        new Promise<void>((resolve) => {
          setTimeout(() => {
            if (step.type === 'request') {
              const r = send(step);
              requests.push(r.record);
              pending.push(r.done);
            } else {
              issued++;
              const e = apply(step);
              events.push(e.record);
              pending.push(e.done);
            }
            resolve();
          }, Math.max(0, step.at - (Date.now() - started)));
        }),
    ),
  );
  await Promise.all(pending);
  await within(Promise.all(refetches), bound);
  const closing = clock.now();
  const settled = await within(cache.close(), options.closeTimeout + bound);
  const closed = clock.now();
  const close = { ms: closed.ms - closing.ms, settled, lag: meter.lag(closing.ms, closed.ms) };
  origin.close();
  agent.destroy();
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  requests.sort((a, b) => a.id - b.id);
  return { plan, requests, renders: origin.renders, events, close };

  function send(step: PlannedRequest): { record: RequestRecord; done: Promise<void> } {
    const headers: Record<string, string> = { 'x-req': String(step.id) };
    if (step.kind === 'cookie') headers.cookie = `sid=${step.user}; theme=dark`;
    if (step.kind === 'auth') headers.authorization = `Bearer ${step.user}`;
    if (step.kind === 'range') headers.range = `bytes=${step.range[0]}-${step.range[1]}`;
    if (step.kind === 'inm') {
      const seen = etags.get(step.key) ?? [];
      headers['if-none-match'] = seen.length === 0 ? '"b0"' : new Random(mix(plan.seed, step.id)).pick(seen);
    }
    const method = step.kind === 'head' ? 'HEAD' : 'GET';
    const record: RequestRecord = { id: step.id, key: step.key, kind: step.kind, user: step.user, method, sentHeaders: headers, sent: clock.now(), body: Buffer.alloc(0), outcome: 'cut', lag: 0 };
    const done = new Promise<void>((resolve) => {
      const chunks: Buffer[] = [];
      let finished = false;
      const finish = (outcome: RequestRecord['outcome'], error?: unknown): void => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        record.outcome = outcome;
        record.end = clock.now();
        record.lag = meter.lag(record.sent.ms, record.end.ms);
        record.body = Buffer.concat(chunks);
        if (error !== undefined) record.error = error instanceof Error ? error.message : String(error);
        resolve();
      };
      const req = http.request({ host: '127.0.0.1', port, path: step.key, method, headers, agent });
      const leave = (): void => {
        finish('aborted');
        req.destroy();
      };
      // A client gives up at the bound plus the lag so far (a real hang never ends at all).
      let timer: NodeJS.Timeout;
      const giveUp = (): void => {
        const due = record.sent.ms + Math.min(allowed(bound, meter.lag(record.sent.ms, performance.now())) + 1_000, GIVE_UP);
        if (performance.now() < due) return void (timer = setTimeout(giveUp, due - performance.now()));
        finish('timeout');
        req.destroy();
      };
      timer = setTimeout(giveUp, bound + 1_000);
      req.on('error', (error) => finish('cut', error));
      req.on('response', (res) => {
        record.response = clock.now();
        record.status = res.statusCode;
        record.headers = res.headers;
        if (step.abort === 'after-headers') return leave();
        res.on('data', (chunk: Buffer) => {
          chunks.push(chunk);
          if (step.abort === 'mid-body') leave();
        });
        res.on('end', () => finish(res.complete ? 'complete' : 'cut'));
        res.on('error', (error) => finish('cut', error));
        res.on('close', () => finish(res.complete ? 'complete' : 'cut'));
      });
      if (step.abort === 'before-headers') setTimeout(() => record.response === undefined && leave(), step.abortAfter);
      req.end();
    }).then(() => {
      const etag = record.headers?.etag;
      if (record.outcome === 'complete' && typeof etag === 'string') etags.set(step.key, [...(etags.get(step.key) ?? []), etag]);
    });
    return { record, done };
  }

  function apply(step: PlannedEvent): { record: EventRecord; done: Promise<void> } {
    const record: EventRecord = { id: step.id, kind: step.kind, path: step.path, scope: step.scope, tag: step.tag, issued: clock.now() };
    const done = (async () => {
      try {
        if (step.kind === 'purge') await purge(port, step.scope === 'tree' ? `${step.path}/*` : step.path);
        else if (step.kind === 'tags') await cache.invalidateTags([step.tag]);
        else {
          const refetch = step.kind === 'refetch';
          const result = await cache.invalidate(step.path, { scope: step.scope, hard: step.kind === 'hard', refetch });
          if (refetch) refetches.push(result.refetched.then((summary) => void (record.refetched = { at: clock.now(), ...summary })));
        }
      } catch (error) {
        record.error = error instanceof Error ? error.message : String(error);
      }
      record.done = clock.now();
    })();
    return { record, done };
  }
}

/** Sends `PURGE path` and waits for the answer. */
function purge(port: number, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: 'PURGE', agent: false }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`PURGE answered ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Whether `promise` settled within `ms`. */
async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([promise.then(() => true, () => true), late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs schedules `base .. base + count - 1` (or `base` `count` times, with `replay`),
 * `concurrency` at a time; calls `onResult` for each; resolves to the failed ones.
 */
export async function runMany(at: {
  base: number;
  count: number;
  concurrency: number;
  replay?: boolean;
  /** Seeds go `base, base + stride, ...` (default 1). */
  stride?: number;
  exclusions?: Exclusions;
  onResult?: (result: ScheduleResult) => void;
  /** Stop starting new schedules when this returns true. */
  stop?: () => boolean;
}): Promise<ScheduleResult[]> {
  const failures: ScheduleResult[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < at.count && !(at.stop?.() ?? false)) {
      const seed = at.replay === true ? (next++, at.base) : at.base + (at.stride ?? 1) * next++;
      const result = await runSchedule(seed, { exclusions: at.exclusions });
      at.onResult?.(result);
      if (result.violations.length > 0) failures.push(result);
    }
  };
  await Promise.all(Array.from({ length: at.concurrency }, worker));
  return failures;
}
