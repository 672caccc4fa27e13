/** Test helpers for the policy: judge a response at a fixed clock, and assert the verdict. */
import assert from 'node:assert/strict';
import { evaluateResponse, type PolicyRequest, type PolicyResponse, type Verdict } from '../../src/policy.js';
import { resolveOptions } from '../../src/options/resolve.js';
import { type CacheOptions } from '../../src/options/types.js';

/** The clock every verdict is computed at. */
export const NOW = Date.now();

/** Judges a response to `GET /page` on example.test with resolved `options`. */
export function judge(
  resHeaders: PolicyResponse['headers'],
  opts: { status?: number; reqHeaders?: PolicyRequest['headers']; options?: CacheOptions; method?: string } = {},
): Verdict {
  return evaluateResponse(
    { method: opts.method ?? 'GET', url: '/page', headers: { host: 'example.test', ...opts.reqHeaders } },
    { status: opts.status ?? 200, headers: resHeaders },
    resolveOptions(opts.options ?? {}),
    NOW,
  );
}

/** Asserts a storable verdict and returns it. */
export function storable(v: Verdict): Extract<Verdict, { storable: true }> {
  assert.equal(v.storable, true, `expected storable, got ${JSON.stringify(v)}`);
  return v as Extract<Verdict, { storable: true }>;
}

/** Asserts a refusal (with `reason` when given) and returns it. */
export function refused(v: Verdict, reason?: string): Extract<Verdict, { storable: false }> {
  assert.equal(v.storable, false, `expected not storable, got ${JSON.stringify(v)}`);
  const r = v as Extract<Verdict, { storable: false }>;
  if (reason !== undefined) assert.equal(r.reason, reason);
  return r;
}
