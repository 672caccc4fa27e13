/**
 * How many schedules to run, from which seed, how many at once: from the environment
 * (`SCHEDULE_SEED` replays one seed, `SCHEDULE_COUNT`, `SCHEDULE_BASE`, `SCHEDULE_CONCURRENCY`),
 * shared by the test and the soak.
 */

export interface Settings {
  base: number;
  count: number;
  concurrency: number;
  /** Set when one seed is replayed (it then runs `count` times). */
  replay: number | undefined;
}

function intOf(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`expected ${name} to be a non-negative integer, got ${JSON.stringify(raw)}`);
  return n;
}

/** The settings of this run. `count` is the default number of schedules. */
export function settingsFromEnv(defaults: { count: number; concurrency: number; base: number }): Settings {
  const replay = process.env.SCHEDULE_SEED === undefined || process.env.SCHEDULE_SEED === '' ? undefined : intOf('SCHEDULE_SEED', 0);
  return {
    base: replay ?? intOf('SCHEDULE_BASE', defaults.base),
    // A replayed seed runs several times: its timing varies from run to run.
    count: intOf('SCHEDULE_COUNT', replay === undefined ? defaults.count : 10),
    concurrency: intOf('SCHEDULE_CONCURRENCY', defaults.concurrency),
    replay,
  };
}
