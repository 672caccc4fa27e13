/**
 * The error log of `stratacache serve`, on stderr, modelled on nginx's: one line per upstream
 * failure with the time, the level, the cause, the upstream URL and the request —
 *
 *   2026/12/06 19:51:02 [error] upstream connect ECONNREFUSED 127.0.0.1:9 (answered 502), upstream: "http://127.0.0.1:9/a", request: "GET /a"
 *
 * — but at most one line per distinct cause a minute, so a dead upstream under load writes one
 * line a minute, not one per request; the next line of that cause says how many it left out.
 * It also remembers each request's cause for the access log line.
 */
import type { IncomingMessage } from 'node:http';
import type { UpstreamFailure } from '../proxy/upstream.js';

/** One line per distinct cause within this many ms. */
export const ERROR_LOG_WINDOW = 60_000;

/** Distinct causes remembered at once. */
const MAX_CAUSES = 100;

const pad = (n: number): string => String(n).padStart(2, '0');

/** nginx's error log time, `2026/12/06 19:51:02` (UTC). */
function logTime(ms: number): string {
  const d = new Date(ms);
  return `${d.getUTCFullYear()}/${pad(d.getUTCMonth() + 1)}/${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
}

/** Writes throttled upstream failure lines; see the module comment. */
export class UpstreamErrorLog {
  readonly #write: (line: string) => void;
  readonly #now: () => number;
  /** Per cause: when its last line was written, and how many failures were left out since. */
  readonly #last = new Map<string, { at: number; omitted: number }>();
  readonly #causes = new WeakMap<IncomingMessage, string>();

  /** `write` gets each line; `now` is the clock (ms, injectable for tests). */
  constructor(write: (line: string) => void, now: () => number = Date.now) {
    this.#write = write;
    this.#now = now;
  }

  /** Records one failure: a line unless its cause had one within the last minute. */
  report(failure: UpstreamFailure, req: IncomingMessage): void {
    this.#causes.set(req, failure.message);
    const now = this.#now();
    const cause = `${failure.cause} ${failure.status ?? 'cut'}`;
    const last = this.#last.get(cause);
    if (last !== undefined && now - last.at < ERROR_LOG_WINDOW) {
      last.omitted++;
      return;
    }
    this.#last.delete(cause);
    this.#last.set(cause, { at: now, omitted: 0 });
    // Causes are few (error codes); a flood of distinct messages forgets the oldest.
    if (this.#last.size > MAX_CAUSES) this.#last.delete(this.#last.keys().next().value!);
    const answered = failure.status === undefined ? 'response cut' : `answered ${failure.status}`;
    const omitted = last !== undefined && last.omitted > 0 ? `; ${last.omitted} more like it since ${logTime(last.at).slice(11)}` : '';
    this.#write(`${logTime(now)} [error] upstream ${failure.message} (${answered}${omitted}), upstream: "${failure.url}", request: "${failure.method} ${req.url ?? '/'}"`);
  }

  /** The upstream failure of this request, if it had one (for its access log line). */
  causeOf(req: IncomingMessage): string | undefined {
    return this.#causes.get(req);
  }
}
