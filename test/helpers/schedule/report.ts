/**
 * Printing a schedule: the replay command, the violations, and the schedule as it ran (options,
 * steps in order, what each request got, what each render did), so a failure reads without a debugger.
 */
import type { ScheduleResult } from './run.js';

/** The command that replays one seed. */
export function replayCommand(seed: number): string {
  return `SCHEDULE_SEED=${seed} node --import tsx --test test/integration/schedule.test.ts`;
}

/** One failing schedule, in full. */
export function describeFailure(result: ScheduleResult): string {
  const { record, violations, seed } = result;
  const lines: string[] = [];
  lines.push(`schedule ${seed} failed: ${violations.length} violation(s)`);
  lines.push(`  replay: ${replayCommand(seed)}`);
  for (const v of violations) lines.push(`  ✗ [${v.rule}]${v.request === undefined ? '' : ` request ${v.request}:`} ${v.detail}`);
  lines.push(`  options: ${JSON.stringify(record.plan.options)}`);
  const rows: { seq: number; text: string }[] = [];
  for (const q of record.requests) {
    const got = q.status === undefined ? q.outcome : `${q.status} ${String(q.headers?.['x-cache'] ?? '-')} render ${String(q.headers?.['x-render'] ?? '-')} ${q.body.length}B ${q.outcome}`;
    const t = (s: { ms: number } | undefined): string => (s === undefined ? '?' : `${Math.round(s.ms - q.sent.ms)}ms`);
    rows.push({ seq: q.sent.seq, text: `req ${q.id} ${q.method} ${q.key} ${q.kind}${q.user === undefined ? '' : `(${q.user})`}${q.sentHeaders['if-none-match'] === undefined ? '' : ` inm=${q.sentHeaders['if-none-match']}`}${q.sentHeaders.range === undefined ? '' : ` ${q.sentHeaders.range}`} -> ${got} (headers ${t(q.response)}, end ${t(q.end)})` });
  }
  for (const r of record.renders) {
    rows.push({ seq: r.begin.seq, text: `render ${r.id} ${r.key} #${r.n} ${r.behaviour} for ${r.forReq === undefined ? 'background' : `req ${r.forReq}`} user ${r.user} -> ${r.status ?? 'no response'}${r.completed ? '' : ' (never finished)'}${r.notModified === undefined ? '' : ` confirming ${r.notModified}`}` });
  }
  for (const e of record.events) {
    rows.push({ seq: e.issued.seq, text: `event ${e.id} ${e.kind} ${e.kind === 'tags' ? e.tag : `${e.path} ${e.scope}`}${e.error === undefined ? '' : ` failed: ${e.error}`}${e.refetched === undefined ? '' : ` refetched ok=${e.refetched.ok} failed=${e.refetched.failed}`}` });
    if (e.done !== undefined) rows.push({ seq: e.done.seq, text: `event ${e.id} done` });
  }
  rows.sort((a, b) => a.seq - b.seq);
  lines.push('  schedule (in order of sending / beginning):');
  for (const row of rows) lines.push(`    ${row.text}`);
  lines.push(`  close(): ${record.close.settled ? `${Math.round(record.close.ms)} ms` : 'never settled'}`);
  return lines.join('\n');
}
