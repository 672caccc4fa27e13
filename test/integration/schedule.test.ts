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
 * replays it, the violations and the schedule as it ran.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { exclusionsOf, OPEN_DEFECTS } from '../helpers/schedule/defects.js';
import { runPool } from '../helpers/schedule/pool.js';
import { replayCommand } from '../helpers/schedule/report.js';
import { settingsFromEnv } from '../helpers/schedule/settings.js';

const settings = settingsFromEnv({ base: 1, count: 1_000, concurrency: 8 });
const title =
  settings.replay === undefined ? `${settings.count} schedules from seed ${settings.base}` : `seed ${settings.replay} replayed ${settings.count} times`;

test(`${title}: every response is one the model allows`, { timeout: 900_000 }, async (t) => {
  for (const d of OPEN_DEFECTS) t.diagnostic(`OPEN DEFECT left out of the schedules: ${d.name} (issue 18: ${d.bullet}): ${JSON.stringify(d.exclude)}`);
  const started = Date.now();
  const failures = await runPool({ ...settings, replay: settings.replay !== undefined, exclusions: exclusionsOf(OPEN_DEFECTS) });
  t.diagnostic(`${settings.count} schedules in ${((Date.now() - started) / 1_000).toFixed(1)} s (${settings.concurrency} at once per worker thread)`);
  if (failures.length === 0) return;
  const seeds = [...new Set(failures.map((f) => f.seed))];
  const summary = seeds.map((seed) => `  seed ${seed} [${[...new Set(failures.filter((f) => f.seed === seed).flatMap((f) => f.rules))].join(', ')}]: ${replayCommand(seed)}`);
  assert.fail([`${failures.length} of ${settings.count} schedules failed:`, ...summary, '', ...failures.slice(0, 3).map((f) => f.text)].join('\n'));
});
