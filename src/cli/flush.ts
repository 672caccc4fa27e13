/**
 * `stratacache flush <path...>`: a client of a node's flush endpoint (its JSON form). Prints what
 * the node answered; exits 1 when it refused.
 */
import { DEFAULTS } from '../options/defaults.js';
import { authHeader, nodeUrl, send, unreachable } from './client.js';
import type { Io } from './io.js';
import { parseFlags, UsageError } from './units.js';

export const FLUSH_HELP = `usage: stratacache flush <path...> [--refetch URI ...] [--tag T ...] [--url NODE] [--token T]

Invalidates paths (and everything under them) and/or tags on a node, through its flush endpoint.
Invalidated pages stay servable during the node's grace period while they refresh; --refetch
renders the given URIs again in the background right away.

  --url NODE        the node's base URL (default http://127.0.0.1:3000)
  --refetch URI     re-render this URI in the background (repeatable)
  --tag T           invalidate every entry tagged T (repeatable)
  --hard            remove the entries at once instead of marking them stale
  --resource        only the paths themselves, not what is under them
  --token T         bearer token (default: STRATACACHE_FLUSH_TOKEN)
  --path P          the flush endpoint's path (default ${DEFAULTS.flush.path})
  -h, --help        this text`;

/** Runs `flush`; resolves with the exit status. */
export async function runFlush(argv: readonly string[], io: Io): Promise<number> {
  const { values, positionals } = parseFlags(
    argv,
    {
      url: { type: 'string' },
      refetch: { type: 'string', multiple: true },
      tag: { type: 'string', multiple: true },
      hard: { type: 'boolean' },
      resource: { type: 'boolean' },
      token: { type: 'string' },
      path: { type: 'string' },
    },
    true,
  );
  if (values.help === true) {
    io.out(FLUSH_HELP);
    return 0;
  }
  const refetch = values.refetch ?? [];
  const tags = values.tag ?? [];
  if (positionals.length + refetch.length + tags.length === 0) throw new UsageError('nothing to flush: give paths, --tag or --refetch (see stratacache flush --help)');
  for (const p of [...positionals, ...refetch]) if (!p.startsWith('/')) throw new UsageError(`expected a path starting with /, got '${p}'`);
  const node = nodeUrl(values.url ?? 'http://127.0.0.1:3000');
  const endpoint = new URL(values.path ?? DEFAULTS.flush.path, node);
  const body = JSON.stringify({ paths: positionals, tags, refetch, ...(values.hard === true ? { hard: true } : {}), ...(values.resource === true ? { scope: 'resource' } : {}) });
  let reply;
  try {
    reply = await send(endpoint, { method: 'POST', headers: { 'content-type': 'application/json', ...authHeader(values.token, io.env) }, body });
  } catch (error) {
    throw unreachable(node, error);
  }
  const text = reply.body.toString('utf8').trim();
  if (reply.status !== 200) {
    const reason = text.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim();
    io.err(`${node.origin} refused the flush: ${reply.status} ${reason}${reply.status === 403 ? ' (not an allowed client, or a wrong/missing --token)' : ''}`);
    return 1;
  }
  let answer: { id?: number; refetch?: number } = {};
  try {
    answer = JSON.parse(text) as typeof answer;
  } catch {
    // An older node answering the dispatcher's HTML "OK".
  }
  const what = [positionals.length > 0 ? `invalidated ${positionals.join(' ')}` : '', tags.length > 0 ? `tags ${tags.join(' ')}` : ''].filter(Boolean).join(', ');
  io.out(`${node.origin}: 200 OK${what !== '' ? `: ${what}` : ''}${values.hard === true ? ' (removed)' : ''}; ${answer.refetch ?? 0} refetch(es) queued${answer.id !== undefined ? ` (invalidation #${answer.id})` : ''}`);
  return 0;
}
