/**
 * The schedule test (issue 18): thousands of seeded, randomised concurrent schedules, each a
 * fresh cache in front of an origin whose behaviour per render is drawn at random (ok, private,
 * Set-Cookie, no-store, errors with and without freshness, throw, hang, stall after the headers,
 * stop when the client leaves, slow streams, 304), many clients on a few keys (anonymous,
 * cookie, Authorization, HEAD, Range, If-None-Match, aborting at random points), with soft and
 * hard invalidation, PURGE, tag invalidation and refetching flushes interleaved, then `close()`.
 * Every response is checked by the reference model (test/helpers/schedule/model.ts).
 *
 * SCHEDULE_SEED=n replays one seed (10 times: timing varies); SCHEDULE_COUNT, SCHEDULE_BASE and
 * SCHEDULE_CONCURRENCY change the run. A failure prints each failing seed, the command that
 * replays it, the violations and the schedule as it ran. In a full run a failing seed is replayed
 * 20 times first: only a failure that happens again fails the test; one that does not is printed
 * as UNCONFIRMED.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { exclusionsOf, OPEN_DEFECTS } from '../helpers/schedule/defects.js';
import { runPool, type FailureReport } from '../helpers/schedule/pool.js';
import { replayCommand } from '../helpers/schedule/report.js';
import { settingsFromEnv } from '../helpers/schedule/settings.js';

const settings = settingsFromEnv({ base: 1, count: 1_000, concurrency: 8 });
/** How many times a failing seed of a full run is replayed to confirm it. */
const REPLAYS = 20;
const title =
  settings.replay === undefined ? `${settings.count} schedules from seed ${settings.base}` : `seed ${settings.replay} replayed ${settings.count} times`;

test(`${title}: every response is one the model allows`, { timeout: 900_000 }, async (t) => {
  for (const d of OPEN_DEFECTS) t.diagnostic(`OPEN DEFECT left out of the schedules: ${d.name} (issue 18: ${d.bullet}): ${JSON.stringify(d.exclude)}`);
  const started = Date.now();
  const failures = await runPool({ ...settings, replay: settings.replay !== undefined, exclusions: exclusionsOf(OPEN_DEFECTS) });
  t.diagnostic(`${settings.count} schedules in ${((Date.now() - started) / 1_000).toFixed(1)} s (${settings.concurrency} at once per worker thread)`);
  if (failures.length === 0) return;
  // A seed fixes the plan, not the timing. A failure of a full run is confirmed by replaying its
  // seed REPLAYS times: one that fails again fails the test; one that never does again is
  // printed in full as UNCONFIRMED (a rare timing-dependent race to chase with
  // `npm run soak -- --verbose`), so one lost race on a busy CI machine does not fail the build.
  const confirmed: FailureReport[] = [];
  for (const seed of settings.replay === undefined ? [...new Set(failures.map((f) => f.seed))] : []) {
    const again = await runPool({ base: seed, count: REPLAYS, concurrency: REPLAYS, replay: true, exclusions: exclusionsOf(OPEN_DEFECTS) });
    if (again.length > 0) confirmed.push(...failures.filter((f) => f.seed === seed));
    else for (const f of failures.filter((f) => f.seed === seed)) t.diagnostic(`UNCONFIRMED: seed ${seed} failed once and passed ${REPLAYS} replays:\n${f.text}`);
  }
  const failed = settings.replay === undefined ? confirmed : failures;
  if (failed.length === 0) return;
  const seeds = [...new Set(failed.map((f) => f.seed))];
  const summary = seeds.map((seed) => `  seed ${seed} [${[...new Set(failed.filter((f) => f.seed === seed).flatMap((f) => f.rules))].join(', ')}]: ${replayCommand(seed)}`);
  assert.fail([`${failed.length} of ${settings.count} schedules failed:`, ...summary, '', ...failed.slice(0, 3).map((f) => f.text)].join('\n'));
});
