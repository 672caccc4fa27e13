/**
 * The reference model: judges every response a schedule's clients got against what the origin
 * rendered and when the invalidations happened. It knows nothing of the cache's internals; it
 * encodes what the README promises:
 * - a response is the origin's answer for that key: to a render that began after the last hard
 *   invalidation covering it that completed before the request was sent; after a soft one, a
 *   render begun before it is served only as `STALE` (and, without stale-on-error, only within
 *   `gracePeriod` of an invalidation or while a refetch of the key is pending);
 * - a render for one request (private, Set-Cookie, no-store, a page written for a user) reaches no
 *   other request; an error without freshness reaches only requests waiting at the same time; an
 *   Authorization request gets only `public` entries it did not render itself;
 * - a status is one the origin sent for that key, or the cache's own 500 (a render threw while
 *   the request waited) or 504 (a render hung or stalled while it waited); 206 and 304 only to
 *   Range and If-None-Match requests, from a stored response;
 * - a complete response (its Content-Length, or the last chunk, arrived) carries the whole body
 *   of its render; a cut one a prefix of it, and only when that render never finished;
 * - a fresh `HIT` is inside the render's `max-age`;
 * - no client waits past {@link waitBound}; `close()` settles within `closeTimeout`;
 * - renders per key stay within {@link renderBound}; a refetch reported stored rendered after its flush.
 */
import type { EventRecord, RequestRecord, ScheduleRecord } from './run.js';
import { renderOfEtag, type RenderRecord } from './origin.js';
import { tagOf as tagOfKey, type ScheduleOptions } from './plan.js';

/** One broken promise. */
export interface Violation {
  rule: Rule;
  /** The request it concerns, if one. */
  request?: number;
  detail: string;
}

export type Rule =
  | 'wait-bound'
  | 'no-response'
  | 'status'
  | 'unknown-render'
  | 'wrong-key'
  | 'leak'
  | 'hard-invalidation'
  | 'soft-invalidation'
  | 'stale'
  | 'expired'
  | 'body'
  | 'truncated'
  | 'cut'
  | 'range'
  | 'render-bound'
  | 'refetch'
  | 'close';

/**
 * Slack (ms) for a loaded machine when the model compares durations. Generous on purpose: on the
 * shared 2-core machine (load average 30 to 50) a plain HIT has taken over 2 s, more than the
 * measured event-loop lag explains; the defects this rule is for never end at all (their clients
 * give up) or take many times this long.
 */
const SLACK = 5_000;
/** How much sooner than `originTimeout` (ms) a gap between writes may already count as a stall (timer granularity). */
const STALL_MARGIN = 20;
/** Slack (ms) on `max-age` and grace comparisons (the cache reads its clock after the client sent). */
const CLOCK_SLACK = 100;

/**
 * The longest a client may wait for its response to end: a flight it joined that times out (no
 * byte for `originTimeout`, before or after its headers), one retry between the waiters, its own
 * render, the slowest planned stream (8 gaps of at most 25 ms), and slack for a loaded machine.
 */
export function waitBound(o: Pick<ScheduleOptions, 'originTimeout'>): number {
  return 3 * o.originTimeout + 8 * 25 + SLACK;
}

/**
 * How long a wait bounded by `bound` may take on a machine whose event loop ran `lag` ms late
 * meanwhile: the lag counts half again (every step of a request waits on a starved loop, not only
 * the ticks measured), so a loaded machine does not fail the schedule, while a request that
 * never ends still does (its client gives up at this time, capped at {@link GIVE_UP}).
 */
export function allowed(bound: number, lag: number): number {
  return bound + 1.5 * lag;
}

/** The longest a client waits for a response before it gives up (ms), whatever the lag. */
export const GIVE_UP = 30_000;

/**
 * Renders of a key the schedule may cause: each client request leads at most one render (its
 * own, or one retry for the waiters of a failed flight, which is that waiter's own); each
 * response served `STALE` starts at most one background refresh (requests the client left early
 * may have been served so too); each refetching flush of the key renders it once.
 */
export function renderBound(record: ScheduleRecord, key: string): number {
  const requests = record.requests.filter((q) => q.key === key);
  const stale = requests.filter((q) => q.outcome === 'aborted' || q.headers?.['x-cache'] === 'STALE').length;
  const refetches = record.events.filter((e) => e.kind === 'refetch' && e.path === key).length;
  return requests.length + stale + refetches;
}

/** Coverage of a key by one invalidation. */
export type Cover = 'hard' | 'soft' | undefined;

/** The resource a path belongs to (extension and selectors of the last segment dropped, as the dispatcher does). */
function resourceOf(path: string): string {
  const slash = path.lastIndexOf('/');
  const last = path.slice(slash + 1);
  const dot = last.indexOf('.');
  const out = dot === -1 ? path : path.slice(0, slash + 1 + dot);
  return out.endsWith('/') ? out.slice(0, -1) : out;
}

/** How invalidation `e` covers `key` (README: Invalidation; statLevel 0, autoInvalidate `*.html`, `*.json`). */
export function covers(e: Pick<EventRecord, 'kind' | 'path' | 'scope' | 'tag'>, key: string, tagsOf: (key: string) => readonly string[]): Cover {
  if (e.kind === 'tags') return tagsOf(key).includes(e.tag) ? 'soft' : undefined;
  const rk = resourceOf(key);
  const rp = resourceOf(e.path);
  const own = e.scope === 'tree' ? rk === rp || rk.startsWith(`${rp}/`) : rk === rp;
  if (own) return e.kind === 'hard' || e.kind === 'purge' ? 'hard' : 'soft';
  // Auto-invalidation stays soft, and reaches only from a tree invalidation.
  if (e.scope === 'tree' && /\.(html|json)$/.test(key)) return 'soft';
  return undefined;
}

/** Judges one schedule. */
export function check(record: ScheduleRecord, tagsOf: (key: string) => readonly string[] = defaultTags): Violation[] {
  const out: Violation[] = [];
  const { options } = record.plan;
  const renders = new Map(record.renders.map((r) => [r.id, r]));
  const bound = waitBound(options);
  const applied = record.events.filter((e) => e.done !== undefined && e.error === undefined);
  for (const q of record.requests) {
    const v = (rule: Rule, detail: string): void => void out.push({ rule, request: q.id, detail });
    if (q.outcome === 'aborted') continue;
    const waited = (q.end?.ms ?? Infinity) - q.sent.ms;
    if (q.outcome === 'timeout') {
      v('wait-bound', `no end ${Math.round(waited)} ms after it was sent (status ${q.status ?? 'none'}, ${q.body.length} bytes so far; bound ${bound} ms + ${Math.round(q.lag)} ms of event-loop lag)`);
      continue;
    }
    if (waited > allowed(bound, q.lag)) v('wait-bound', `took ${Math.round(waited)} ms (bound ${bound} ms + ${Math.round(q.lag)} ms the event loop ran late)`);
    if (q.status === undefined || q.headers === undefined) {
      // A render cut for stalling may close a connection whose headers never left (HEAD: the
      // headers wait for the end of a body that is never sent): visibly cut, allowed.
      const cutStall = record.renders.some((r) => r.forReq === q.id && stalled(r));
      if (!cutStall) v('no-response', `the connection ended with no response (${q.error ?? 'no error'})`);
      continue;
    }
    judge(q, q.status, q.headers, v);
  }

  function judge(q: RequestRecord, status: number, headers: NonNullable<RequestRecord['headers']>, v: (rule: Rule, detail: string) => void): void {
    const xr = headers['x-render'];
    const xcache = headers['x-cache'];
    const etagId = renderOfEtag(typeof headers.etag === 'string' ? headers.etag : undefined);
    if (status === 304) {
      if (q.kind !== 'inm') return v('status', `304 to a request without If-None-Match`);
      const b = etagId === undefined ? undefined : renders.get(etagId);
      if (b === undefined) return v('unknown-render', `304 with ETag ${String(headers.etag)}`);
      if (!(q.sentHeaders['if-none-match'] ?? '').includes(b.etag)) v('status', `304 for ${b.etag}, which the request did not name`);
      if (b.key !== q.key) v('wrong-key', `304 confirms render ${b.id} of ${b.key}`);
      if (b.audience !== 'shared') v('leak', `304 confirms render ${b.id} (${b.behaviour}, for request ${b.forReq ?? 'none'}), never shareable`);
      const vouches = [b, ...record.renders.filter((w) => w.status === 304 && w.notModified?.includes(b.etag) && w.begin.seq < (q.end?.seq ?? Infinity))];
      judgeInvalidations(q, vouches, String(xcache ?? ''), v);
      return;
    }
    if (xr === undefined) {
      // The cache's own answer.
      const overlapping = (r: RenderRecord): boolean => r.key === q.key && r.begin.seq < (q.end?.seq ?? Infinity) && (r.end?.seq ?? Infinity) > q.sent.seq;
      if (status === 500 && record.renders.some((r) => r.behaviour === 'throw' && overlapping(r))) return;
      if (status === 504 && record.renders.some((r) => stalled(r) && overlapping(r))) return;
      const during = record.renders.filter(overlapping).map((r) => `${r.id}:${r.behaviour}`);
      return v('status', `${status} from the cache, not the origin; renders of ${q.key} while it waited: ${during.join(' ') || 'none'}`);
    }
    const vr = renders.get(Number(xr));
    if (vr === undefined) return v('unknown-render', `X-Render ${String(xr)}`);
    if (vr.key !== q.key) v('wrong-key', `render ${vr.id} of ${vr.key}`);
    // A 304 from the origin freshened a stored body (render `b`); otherwise the body is the render's own.
    const b = vr.status === 304 ? (etagId === undefined ? undefined : renders.get(etagId)) : vr;
    if (b === undefined) return v('unknown-render', `render ${vr.id} answered 304, and the body's ETag ${String(headers.etag)} names no render`);
    if (b !== vr && !(vr.notModified ?? '').includes(b.etag)) v('body', `render ${vr.id} confirmed ${vr.notModified ?? 'nothing'}, the body is render ${b.id}'s`);
    // (An answer without the ETag is the origin's body all the same; a different ETag is another render's header.)
    if (b === vr && etagId !== undefined && etagId !== vr.id) v('body', `X-Render ${vr.id} with the ETag of ${String(headers.etag)}`);
    audience(q, vr, v);
    if (b !== vr) audience(q, b, v);
    judgeInvalidations(q, [vr], String(xcache ?? ''), v);
    // A fresh HIT lies inside the max-age of the render that last vouched for it.
    if (xcache === 'HIT' && vr.maxAge !== undefined && vr.headersAt !== undefined && q.sent.ms > vr.headersAt.ms + vr.maxAge * 1_000 + CLOCK_SLACK) {
      v('expired', `HIT from render ${vr.id} sent ${Math.round(q.sent.ms - vr.headersAt.ms)} ms after its headers, max-age=${vr.maxAge}`);
    }
    judgeBody(q, status, headers, b, v);
  }

  /** Who may receive render `r`. */
  function audience(q: RequestRecord, r: RenderRecord, v: (rule: Rule, detail: string) => void): void {
    const own = r.forReq === q.id;
    const who = `render ${r.id} (${r.behaviour}, user ${r.user}, for request ${r.forReq ?? 'none: background'})`;
    const to = `request ${q.id} (${q.kind}${q.user === undefined ? '' : ` ${q.user}`})`;
    if (r.audience === 'none') return v('leak', `${who} sent no response, yet ${to} got one naming it`);
    if (r.audience === 'owner' && !own) return v('leak', `${who} delivered to ${to}`);
    if (r.audience === 'concurrent' && !own) {
      const overlaps = r.begin.seq < (q.end?.seq ?? Infinity) && (r.end?.seq ?? Infinity) > q.sent.seq;
      if (q.kind === 'auth' || !overlaps) return v('leak', `${who}, an error without freshness, delivered to ${to}, which ${q.kind === 'auth' ? 'carries Authorization' : 'was not waiting for it'}`);
    }
    // README: an Authorization request is only served entries stored public.
    if (q.kind === 'auth' && !own && r.behaviour === 'personal') v('leak', `${who}, stored without public, served to ${to}`);
  }

  /**
   * Invalidations that completed before the request was sent and cover its key: a render begun
   * before a hard one is never served; before a soft one, only as STALE within the grace rules.
   * `vouches`: the renders that vouch for the content (any one passing is enough).
   */
  function judgeInvalidations(q: RequestRecord, vouches: RenderRecord[], xcache: string, v: (rule: Rule, detail: string) => void): void {
    const problems = vouches.map((vr) => invalidationProblem(q, vr, xcache));
    if (problems.some((p) => p === undefined)) return;
    const first = problems[0]!;
    v(first.rule, first.detail);
  }

  function invalidationProblem(q: RequestRecord, vr: RenderRecord, xcache: string): { rule: Rule; detail: string } | undefined {
    const covering = applied.filter((e) => covers(e, q.key, tagsOf) !== undefined);
    for (const e of covering) {
      if (e.done!.seq > q.sent.seq || vr.begin.seq > e.issued.seq) continue;
      const what = `render ${vr.id} (${vr.behaviour}) began before ${describe(e)}, which completed before request ${q.id} was sent`;
      if (covers(e, q.key, tagsOf) === 'hard') return { rule: 'hard-invalidation', detail: `${what}; served ${xcache}` };
      if (xcache !== 'STALE') return { rule: 'soft-invalidation', detail: `${what}; served ${xcache || 'without X-Cache'}, not STALE` };
    }
    if (xcache === 'STALE' && !options.serveStaleOnError && !graceAllows(q, vr, covering)) {
      return { rule: 'stale', detail: `render ${vr.id} served STALE with stale-on-error off, outside every grace period (${options.gracePeriod} ms) and pending refetch` };
    }
    return undefined;
  }

  /** Without stale-on-error a STALE copy is served only within grace of a soft invalidation it predates, or while a refetch of the key is pending. */
  function graceAllows(q: RequestRecord, vr: RenderRecord, covering: EventRecord[]): boolean {
    return covering.some((e) => {
      // The render may predate the invalidation if it began before its call returned (a PURGE is
      // applied when the server reads it, between sending it and its answer).
      if (vr.begin.seq > e.done!.seq || e.issued.seq > (q.end?.seq ?? Infinity)) return false;
      if (q.sent.ms < e.issued.ms + options.gracePeriod + CLOCK_SLACK) return true;
      return e.kind === 'refetch' && (e.refetched === undefined || q.sent.seq < e.refetched.at.seq);
    });
  }

  function judgeBody(q: RequestRecord, status: number, headers: NonNullable<RequestRecord['headers']>, b: RenderRecord, v: (rule: Rule, detail: string) => void): void {
    const body = q.body;
    if (q.method === 'HEAD') {
      if (body.length > 0) v('body', `HEAD answered with ${body.length} body bytes`);
      return;
    }
    if (status === 206) {
      const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(String(headers['content-range'] ?? ''));
      if (q.kind !== 'range' || m === null) return v('range', `206 with Content-Range ${String(headers['content-range'])} to a ${q.kind} request`);
      const [first, last, total] = [Number(m[1]), Number(m[2]), Number(m[3])];
      const asked = /bytes=(\d+)-(\d+)/.exec(q.sentHeaders.range ?? '')!;
      if (first !== Number(asked[1]) || last !== Number(asked[2]) || total !== b.body.length) v('range', `Content-Range ${first}-${last}/${total} for ${q.sentHeaders.range ?? ''} of a ${b.body.length}-byte render ${b.id}`);
      if (q.outcome !== 'complete') return v('cut', `a 206 from a stored entry was cut after ${body.length} bytes`);
      if (!body.equals(b.body.subarray(first, last + 1))) v('body', `206 body is not bytes ${first}-${last} of render ${b.id}`);
      return;
    }
    const expected = b.body;
    if (q.outcome === 'complete') {
      if (body.equals(expected)) return;
      if (body.length < expected.length && body.equals(expected.subarray(0, body.length))) {
        return v('truncated', `complete-looking ${status} with ${body.length} of render ${b.id}'s ${expected.length} bytes (${b.behaviour})`);
      }
      return v('body', `body is not render ${b.id}'s (${body.length} bytes: ${JSON.stringify(body.subarray(0, 40).toString('latin1'))})`);
    }
    // Cut: a prefix of a render that never finished.
    if (!body.equals(expected.subarray(0, body.length))) v('body', `cut body is not a prefix of render ${b.id}'s`);
    if (b.completed && !stalled(b)) v('cut', `cut after ${body.length} of ${expected.length} bytes, though render ${b.id} (${b.behaviour}) finished (${q.error ?? ''})`);
  }

  /** A render that went `originTimeout` without writing (planned, or a slow stream on a loaded machine). */
  function stalled(r: RenderRecord): boolean {
    return r.maxGap >= options.originTimeout - STALL_MARGIN;
  }

  // Renders per key.
  for (const key of new Set(record.renders.map((r) => r.key))) {
    const count = record.renders.filter((r) => r.key === key).length;
    const limit = renderBound(record, key);
    if (count > limit) out.push({ rule: 'render-bound', detail: `${count} renders of ${key}, bound ${limit}` });
  }
  // A refetch reported as stored rendered after its flush.
  for (const e of record.events.filter((x) => x.kind === 'refetch' && x.error === undefined)) {
    if (e.refetched === undefined) out.push({ rule: 'refetch', detail: `${describe(e)}: refetched never settled (bound ${bound} ms after the last request)` });
    else if (e.refetched.ok > 0 && !record.renders.some((r) => r.key === e.path && r.begin.seq > e.issued.seq && r.audience === 'shared' && r.completed)) {
      out.push({ rule: 'refetch', detail: `${describe(e)} reported ${e.refetched.ok} stored, but no shareable render of ${e.path} began after it` });
    }
  }
  if (!record.close.settled) out.push({ rule: 'close', detail: `close() did not settle within ${options.closeTimeout + bound} ms` });
  else if (record.close.ms > allowed(options.closeTimeout + SLACK, record.close.lag)) out.push({ rule: 'close', detail: `close() took ${Math.round(record.close.ms)} ms (closeTimeout ${options.closeTimeout})` });
  return out;
}

function describe(e: EventRecord): string {
  const target = e.kind === 'tags' ? `tag ${e.tag}` : `${e.path} (${e.scope})`;
  return `${e.kind} #${e.id} of ${target}`;
}

/** The tags the schedule origin puts on every response of a key. */
function defaultTags(key: string): readonly string[] {
  return [tagOfKey(key), 'all'];
}
