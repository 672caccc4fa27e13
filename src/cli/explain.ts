/**
 * `stratacache explain URL`: why a page is (not) cached, from a node's guarded explain endpoint:
 * readable on a terminal, the endpoint's JSON otherwise (or with `--json`).
 */
import type { Explanation } from '../observe/explain.js';
import { EXPLAIN_PATH } from '../observe/explain.js';
import { authHeader, formatBytes, nodeUrl, send, unreachable } from './client.js';
import type { Io } from './io.js';
import { parseFlags, UsageError } from './units.js';

export const EXPLAIN_HELP = `usage: stratacache explain URL [--url NODE] [--json] [--token T]

Explains one page as a node sees it: its cache key and variants, where each variant is stored
(memory, disk, Redis, a peer), its freshness and Age, validators, tags and data dependencies,
the per-route rule that applies, the recent invalidations that reached it, and whether the last
response for it was stored, passed or refused (and why). URL is a path (/news/today) or an
absolute URL (its host picks the site; without --url its origin is the node asked). The
endpoint (${EXPLAIN_PATH}) is guarded like the node's flush endpoint.

  --url NODE   the node's base URL (default: URL's origin, else http://127.0.0.1:3000)
  --json       print the node's JSON (the default when the output is not a terminal)
  --token T    bearer token (default: STRATACACHE_FLUSH_TOKEN)
  -h, --help   this text`;

const seconds = (s: number): string => (Math.abs(s) >= 3600 ? `${(s / 3600).toFixed(1)} h` : Math.abs(s) >= 60 ? `${(s / 60).toFixed(1)} min` : `${s} s`);
const ms = (n: number | undefined): string => (n === undefined ? '-' : seconds(Math.round(n / 1000)));

/** The explanation as aligned `label  value` lines. Exported for tests. */
export function explainText(e: Explanation): string {
  const rows: Array<[string, string]> = [
    ['url', `${e.host === '' ? '' : e.host}${e.url}`],
    ['key', e.key === null ? 'none (not a cacheable target)' : JSON.stringify(e.key)],
  ];
  const r = e.rule;
  if (r === null) rows.push(['rule', 'none (the global options apply)']);
  else {
    const terms = [r.bypass ? 'bypass' : undefined, r.ttl === undefined ? undefined : `ttl ${ms(r.ttl)}`, r.staleWhileRevalidate === undefined ? undefined : `swr ${ms(r.staleWhileRevalidate)}`, r.staleIfError === undefined ? undefined : `sie ${ms(r.staleIfError)}`, r.cacheStatuses === null ? undefined : `statuses ${r.cacheStatuses.join(',')}`, r.tags.length === 0 ? undefined : `tags ${r.tags.join(' ')}`, r.override ? 'override' : undefined];
    rows.push(['rule', `#${r.index} ${r.name}: ${terms.filter((t) => t !== undefined).join(', ') || 'no terms'}`]);
  }
  if (e.vary.length > 0) rows.push(['vary', e.vary.join(', ')]);
  if (e.variants.every((v) => v.entry === null)) rows.push(['stored', 'nowhere']);
  for (const v of e.variants) {
    const where = v.tiers.map((t) => `${t.tier} ${t.error !== undefined ? `error (${t.error})` : t.found ? 'yes' : 'no'}`).join(', ');
    rows.push([v.selected ? 'variant *' : 'variant', `${JSON.stringify(v.key)}: ${where}`]);
    const en = v.entry;
    if (en === null) continue;
    rows.push(['  status', `${en.status}, ${en.state} (ttl ${seconds(en.ttl)}, Age ${en.age} s), ${formatBytes(en.bytes)}`]);
    rows.push(['  times', `stored ${en.storedAt}, stale ${en.staleAt}, swr until ${en.swrUntil}, sie until ${en.sieUntil}, kept until ${en.expiresAt}`]);
    rows.push(['  validators', [en.etag === null ? undefined : `ETag ${en.etag}`, en.lastModified === null ? undefined : `Last-Modified ${en.lastModified}`].filter(Boolean).join(', ') || 'none']);
    rows.push(['  tags', en.tags.length === 0 ? 'none' : en.tags.join(' ')]);
    rows.push(['  data deps', en.deps.length === 0 ? 'none' : en.deps.join(' ')]);
    if (en.invalidated !== null) rows.push(['  invalidated', `${en.invalidated.hard ? 'hard (removed)' : 'soft (stale)'} at ${en.invalidated.at}`]);
  }
  if (e.peer !== null) rows.push(['peer', `${e.peer} has it`]);
  if (e.passing !== null) rows.push(['passing', `requests go to the origin without waiting (hit-for-miss): ${e.passing}`]);
  rows.push(['last response', e.last === null ? 'none seen since the node started' : `${e.last.outcome}${e.last.reason === undefined || e.last.reason === '' ? '' : ` (${e.last.reason})`} at ${e.last.at}`]);
  if (e.invalidations.length === 0) rows.push(['invalidations', 'none recent reached it']);
  for (const i of e.invalidations) rows.push(['invalidation', `#${i.id} ${i.at} ${i.hard ? 'hard' : 'soft'} ${[...i.paths, ...i.tags.map((t) => `tag:${t}`)].join(' ')} (${i.scope}, ${i.origin})`]);
  const width = Math.max(...rows.map(([l]) => l.length)) + 2;
  return rows.map(([label, value]) => label.padEnd(width) + value).join('\n');
}

/** Runs `explain`; resolves with the exit status. */
export async function runExplain(argv: readonly string[], io: Io): Promise<number> {
  const { values, positionals } = parseFlags(argv, { url: { type: 'string' }, json: { type: 'boolean' }, token: { type: 'string' } }, true);
  if (values.help === true) {
    io.out(EXPLAIN_HELP);
    return 0;
  }
  const [page, extra] = positionals;
  if (page === undefined || extra !== undefined) throw new UsageError('explain needs one URL: a path (/news/today) or an absolute URL');
  const absolute = /^https?:\/\//i.test(page);
  if (!absolute && !page.startsWith('/')) throw new UsageError(`expected URL to be a path or an http(s) URL, got '${page}'`);
  const node = nodeUrl(values.url ?? (absolute ? new URL(page).origin : 'http://127.0.0.1:3000'));
  const target = new URL(EXPLAIN_PATH, node);
  target.searchParams.set('url', page);
  let reply;
  try {
    reply = await send(target, { headers: { accept: 'application/json', ...authHeader(values.token, io.env) }, timeout: 10_000 });
  } catch (error) {
    throw unreachable(node, error);
  }
  if (reply.status !== 200) {
    io.err(`${node.origin} refused the explain request: ${reply.status}${reply.status === 403 || reply.status === 401 ? ' (not an allowed client, or a wrong/missing --token)' : ` ${reply.body.toString('utf8').trim()}`}`);
    return 1;
  }
  const text = reply.body.toString('utf8');
  if (values.json === true || !io.tty) io.out(text.trim());
  else io.out(explainText(JSON.parse(text) as Explanation));
  return 0;
}
