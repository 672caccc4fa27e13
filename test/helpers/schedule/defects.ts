/**
 * Issue-18 defects the engine still has on main, left out of the generated schedules until their
 * fix lands, so the rest of the schedule test guards main meanwhile. Each entry names the issue's
 * bullet and what it leaves out; the schedule test prints the list on every run, so an exclusion
 * is never silent. Empty when every class passes.
 */
import type { Exclusions } from './plan.js';

export interface OpenDefect {
  /** Short name, as in the findings. */
  name: string;
  /** The issue-18 bullet it is. */
  bullet: string;
  /** What schedules leave out while it is open. */
  exclude: Partial<Exclusions>;
}

export const OPEN_DEFECTS: readonly OpenDefect[] = [
  {
    name: 'stall-after-headers',
    bullet: 'a render that sends its headers and a few bytes, then stalls, holds its client and waiters for good (no bound after the headers)',
    exclude: { behaviours: ['stall'] },
  },
  {
    name: 'hung-background-render',
    bullet: 'a background render (grace refresh, refetch) that never answers has no originTimeout: requests that wait for it never end, its refetch never settles',
    exclude: { behaviours: ['hang'] },
  },
  {
    name: 'stop-when-client-leaves',
    bullet: "a handler that stops when its client leaves (res.destroyed, pipeline) is waited on for originTimeout, then its waiters get the cache's 500",
    exclude: { behaviours: ['stop'] },
  },
  {
    name: 'invalidation-loses-to-render-in-flight',
    bullet: 'soft/hard invalidation, PURGE and refetching flush lose against a render in flight (a slow stream stored fresh after them; a refetch joins the old flight)',
    exclude: { behaviours: ['slow'] },
  },
  {
    name: '500-behind-an-error',
    bullet: "waiters behind an origin 5xx without freshness get a 500 the origin never sent",
    exclude: { behaviours: ['error'] },
  },
];

/** The exclusions of every open defect together. */
export function exclusionsOf(defects: readonly OpenDefect[]): Exclusions {
  return {
    behaviours: defects.flatMap((d) => d.exclude.behaviours ?? []),
    requests: defects.flatMap((d) => d.exclude.requests ?? []),
    events: defects.flatMap((d) => d.exclude.events ?? []),
    aborts: defects.flatMap((d) => d.exclude.aborts ?? []),
  };
}
