/**
 * A scripted origin for integration tests: each path has a plan (status, headers, body or chunks,
 * a delay, a failure before or after the first byte), and the origin counts its renders per path
 * and how many run at once. Every adapter test (raw, Express, Connect, Koa) executes the same
 * plans in its framework's own idiom, so the shared scenarios in `adapter-suite.ts` assert the
 * same user-visible behaviour through each adapter.
 */
import { once } from 'node:events';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';

/** What the origin is asked to render. */
export interface OriginRequest {
  method: string;
  url: string;
  /** The path without the query. */
  path: string;
  headers: IncomingHttpHeaders;
}

/** How the origin answers one render. */
export interface Plan {
  status?: number;
  headers?: Record<string, string | string[]>;
  /** The whole body, written at once. */
  body?: string | Buffer;
  /** A body streamed chunk by chunk (no Content-Length), yielding to the event loop between chunks. */
  chunks?: Array<string | Buffer>;
  /** Milliseconds to wait before answering. */
  delayMs?: number;
  /** Throw before anything is written, or after the first chunk went out. */
  fail?: 'before' | 'after';
  /** The render waits for this (after `delayMs`) before answering: lets a test hold a render open. */
  gate?: Promise<unknown>;
  /** The body, made while the render runs (after the gate): a page that reads the data cache. */
  bodyFrom?: () => Promise<string>;
}

/** Decides the plan for a render; `n` is this path's render number, from 1. */
export type Route = (req: OriginRequest, n: number) => Plan;

/** The error a plan with `fail` throws. */
export class OriginError extends Error {
  constructor(when: string) {
    super(`origin failed ${when}`);
  }
}

/** Counts renders; adapters call {@link Origin.begin} when a render starts and {@link Origin.end} when it is over. */
export class Origin {
  readonly #counts = new Map<string, number>();
  readonly #finished = new Map<string, number>();
  readonly route: Route;
  /** Renders running now. */
  active = 0;
  /** Most renders that ever ran at once. */
  maxActive = 0;

  constructor(route: Route) {
    this.route = route;
  }

  /** Starts a render of `req` and returns its plan. */
  begin(req: IncomingMessage): Plan {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    const n = (this.#counts.get(path) ?? 0) + 1;
    this.#counts.set(path, n);
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    return this.route({ method: req.method ?? 'GET', url, path, headers: req.headers }, n);
  }

  /** Marks a render of `url` finished (successfully or not). */
  end(url: string | undefined): void {
    const u = url ?? '/';
    const q = u.indexOf('?');
    const path = q === -1 ? u : u.slice(0, q);
    this.active--;
    this.#finished.set(path, (this.#finished.get(path) ?? 0) + 1);
  }

  /** Renders started, for one path or in all. */
  renders(path?: string): number {
    if (path !== undefined) return this.#counts.get(path) ?? 0;
    let total = 0;
    for (const n of this.#counts.values()) total += n;
    return total;
  }

  /** Renders of a path that have finished. */
  finished(path: string): number {
    return this.#finished.get(path) ?? 0;
  }
}

/** Resolves when `condition` holds (polled every 5 ms; it may be async), or after `timeoutMs` so a broken test fails instead of hanging. */
export async function until(condition: () => boolean | Promise<boolean>, timeoutMs = 5_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 5));
  }
  return true;
}

/**
 * What every adapter's origin does before writing: wait out the delay and gate, or fail first;
 * then make the body when the plan makes it during the render.
 */
export async function preparePlan(plan: Plan): Promise<void> {
  if (plan.delayMs !== undefined) await new Promise((r) => setTimeout(r, plan.delayMs));
  if (plan.gate !== undefined) await plan.gate;
  if (plan.fail === 'before') throw new OriginError('before writing');
  if (plan.bodyFrom !== undefined) plan.body = await plan.bodyFrom();
}

/**
 * Executes a plan on a plain Node response (raw handlers and Connect): a whole body through
 * setHeader and end (so Node sets Content-Length), chunks through writeHead and write. Rejects
 * with {@link OriginError} when the plan fails.
 */
export async function runNodePlan(origin: Origin, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = req.url;
  const plan = origin.begin(req);
  try {
    await preparePlan(plan);
    if (plan.chunks !== undefined) {
      res.writeHead(plan.status ?? 200, plan.headers ?? {});
      for (const chunk of plan.chunks) {
        if (!res.write(chunk)) await once(res, 'drain');
        if (plan.fail === 'after') throw new OriginError('after the first chunk');
        await new Promise((r) => setImmediate(r));
      }
      res.end();
      return;
    }
    res.statusCode = plan.status ?? 200;
    for (const [name, value] of Object.entries(plan.headers ?? {})) res.setHeader(name, value);
    res.end(plan.body ?? '');
  } finally {
    origin.end(url);
  }
}

/** A Node stream of `chunks`, one per tick, that fails after the first one when `failAfterFirst` (Koa and Fastify bodies). */
export function chunkStream(chunks: Array<string | Buffer>, failAfterFirst: boolean): Readable {
  let i = 0;
  return new Readable({
    read() {
      if (failAfterFirst && i === 1) {
        setImmediate(() => this.destroy(new OriginError('after the first chunk')));
        return;
      }
      if (i === chunks.length) {
        this.push(null);
        return;
      }
      const chunk = chunks[i++]!;
      setImmediate(() => this.push(chunk));
    },
  });
}
