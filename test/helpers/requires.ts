/**
 * What a test needs from the machine (a redis-server, Chromium, a built `dist/`). On a developer's
 * machine without it the test is skipped with the reason; under CI, where `.ci/run` installs and
 * builds all of it, a missing part is an error instead: a skip there would hide a broken install.
 */

/** Under CI (`CI` set and not `false`, as `.ci/run` runs). */
export const UNDER_CI = process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false';

/** Undefined (the caller skips with `reason`) off CI; throws under CI. */
export function missing(reason: string): undefined {
  if (UNDER_CI) throw new Error(`missing under CI: ${reason}`);
  return undefined;
}
