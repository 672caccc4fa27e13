/**
 * `stratacache stats --url NODE`: a node's counters (from its guarded stats endpoint) as a
 * readable table, or the raw JSON with `--json`.
 */
import { STATS_PATH } from '../adapters/internal.js';
import type { ObservedState } from '../observe/metrics.js';
import { authHeader, formatBytes, nodeUrl, send, unreachable } from './client.js';
import type { Io } from './io.js';
import { parseFlags } from './units.js';

export const STATS_HELP = `usage: stratacache stats --url NODE [--json] [--token T]

Shows a node's hit ratio, entries, bytes, renders saved, and its peers' circuit breakers. The
node's stats endpoint (${STATS_PATH}) is guarded like its flush endpoint: an allowed client
address, and the token when one is set.

  --url NODE   the node's base URL (default http://127.0.0.1:3000)
  --json       print the node's JSON as it answered
  --token T    bearer token (default: STRATACACHE_FLUSH_TOKEN)
  -h, --help   this text`;

/** What the stats endpoint answers. */
export type StatsReply = ObservedState;

const pct = (part: number, whole: number): string => (whole === 0 ? '-' : `${((part / whole) * 100).toFixed(1)} %`);

/** Renders the stats as aligned `label  value` lines. Exported for tests. */
export function statsTable(node: string, s: StatsReply): string {
  const c = s.stats;
  const answeredWithoutRender = c.hits + c.stale + c.peerHits;
  const rows: Array<[string, string]> = [
    ['node', node],
    ['requests', `${c.gets} cacheable, ${c.passes} passed through`],
    ['hit ratio', `${pct(answeredWithoutRender, c.gets)}  (${c.hits} hits, ${c.stale} stale, ${c.peerHits} from peers)`],
    ['renders', `${c.misses + c.regenerations}  (${c.misses} misses, ${c.regenerations} in the background)`],
    ['renders saved', `${answeredWithoutRender}  (${c.loadsDeduped} requests coalesced onto another's render)`],
    ['entries', `${c.entries}  (${formatBytes(c.bytes)} in memory)`],
    ['invalidations', `${c.invalidations}  (${c.flushes} flushes, ${c.flushRejected} refused; ${c.refetches} refetched, ${c.refetchErrors} failed)`],
    ['stale on error', String(c.staleOnError)],
    ['errors', String(c.errors)],
  ];
  for (const t of s.tiers) if (t.tier !== 'memory' && t.tier !== 'data') rows.push([`tier ${t.tier}`, `${t.entries} entries (${formatBytes(t.bytes)})`]);
  rows.push(['data cache', `${s.data.entries} entries (${formatBytes(s.data.bytes)}), ${pct(s.data.hits + s.data.stale, s.data.gets)} hits, ${s.data.loads} loads`]);
  if (c.peers.length > 0) {
    rows.push(['peer lookups', `${c.peerLoads}  (${c.peerHits} hits, ${c.peerMisses} misses, ${c.peerErrors} errors, ${c.peerTimeouts} timeouts)`]);
    // Owner-fetch (a node of an older version reports neither).
    if ((c.ownerFetches ?? 0) > 0 || (c.rendersForPeers ?? 0) > 0) rows.push(['owner-fetch', `${c.ownerFetches ?? 0} sent, ${c.rendersForPeers ?? 0} pages rendered here for peers`]);
    for (const p of c.peers) rows.push(['peer', `${p.url}  ${p.state}${p.failures > 0 ? ` (${p.failures} failures)` : ''}`]);
  } else rows.push(['peers', 'none']);
  const width = Math.max(...rows.map(([l]) => l.length)) + 2;
  return rows.map(([label, value]) => label.padEnd(width) + value).join('\n');
}

/** Runs `stats`; resolves with the exit status. */
export async function runStats(argv: readonly string[], io: Io): Promise<number> {
  const { values } = parseFlags(argv, { url: { type: 'string' }, json: { type: 'boolean' }, token: { type: 'string' } });
  if (values.help === true) {
    io.out(STATS_HELP);
    return 0;
  }
  const node = nodeUrl(values.url ?? 'http://127.0.0.1:3000');
  let reply;
  try {
    reply = await send(new URL(STATS_PATH, node), { headers: { accept: 'application/json', ...authHeader(values.token, io.env) }, timeout: 10_000 });
  } catch (error) {
    throw unreachable(node, error);
  }
  if (reply.status !== 200) {
    io.err(`${node.origin} refused the stats request: ${reply.status}${reply.status === 403 ? ' (not an allowed client, or a wrong/missing --token)' : ''}`);
    return 1;
  }
  const text = reply.body.toString('utf8');
  if (values.json === true) {
    io.out(text.trim());
    return 0;
  }
  io.out(statsTable(node.origin, JSON.parse(text) as StatsReply));
  return 0;
}
