/**
 * `stratacache prime <file | sitemap.xml | sitemap URL> --url NODE`: warms a node by requesting every URL through
 * it with bounded concurrency. A progress bar on a terminal, a plain line every few seconds
 * otherwise, and a summary: done, failed, bytes, time.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pLimit from 'p-limit';
import { formatBytes, nodeUrl, send } from './client.js';
import type { Io } from './io.js';
import { parseDuration, parseFlags, parseInteger, UsageError } from './units.js';

export const PRIME_HELP = `usage: stratacache prime <file-of-URLs | sitemap.xml | sitemap URL> --url NODE [--concurrency N]

Requests every URL through the node so that its cache holds them. The list is a file with one
URL or path per line (blank lines and # comments skipped), or a sitemap (or sitemap index), as a
file (sitemap.xml) or a URL; an index's sitemaps are read too (from a local index, a relative
<loc> is a file beside it).
An absolute URL is requested from the node with its own Host, so it is cached under the name
clients use.

  --url NODE          the node's base URL (required)
  --concurrency N     requests at once (default 4)
  --timeout DURATION  give up on one URL after this long (default 30s)
  -h, --help          this text`;

/** Extracts `<loc>` values from a sitemap or sitemap index. */
export function sitemapLocations(xml: string): { pages: string[]; sitemaps: string[] } {
  const pages: string[] = [];
  const sitemaps: string[] = [];
  const unescape = (s: string): string => s.replace(/&amp;/g, '&').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'");
  // A <sitemap> element of an index points at another sitemap; a <url> element at a page.
  for (const m of xml.matchAll(/<(url|sitemap)\b[^>]*>[\s\S]*?<loc>\s*([\s\S]*?)\s*<\/loc>/g)) {
    (m[1] === 'sitemap' ? sitemaps : pages).push(unescape(m[2]!.replace(/^<!\[CDATA\[|\]\]>$/g, '')));
  }
  return { pages, sitemaps };
}

/** True when a file's text is a sitemap or sitemap index (XML), not a list of URLs. */
const isSitemap = (text: string): boolean => /^\s*(<\?xml|<urlset\b|<sitemapindex\b)/.test(text);

/** A sitemap's text: fetched when `where` is an http(s) URL, else read from a file (a path or `file:` URL). */
async function readSitemap(where: string): Promise<string> {
  if (!/^https?:\/\//i.test(where)) return readText(where.startsWith('file:') ? fileURLToPath(where) : where, where);
  let reply;
  try {
    reply = await send(new URL(where), { timeout: 30_000 });
  } catch (error) {
    throw new UsageError(`cannot read the sitemap ${where}: ${(error as Error).message}`);
  }
  if (reply.status !== 200) throw new UsageError(`cannot read the sitemap ${where}: status ${reply.status}`);
  return reply.body.toString('utf8');
}

/** A local file's text; `shown` names it in the error. */
function readText(path: string, shown: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read ${shown}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}

/**
 * The pages of a sitemap whose text is `xml`, read from `where` (a URL or a file path); an index's
 * sitemaps are followed one level, a relative one from a local index as a file beside it.
 */
async function sitemapPages(xml: string, where: string): Promise<string[]> {
  const top = sitemapLocations(xml);
  const pages = [...top.pages];
  const remote = /^https?:\/\//i.test(where);
  for (const nested of top.sitemaps) {
    const at = remote || /^(https?|file):/i.test(nested) ? nested : resolve(dirname(where), nested);
    pages.push(...sitemapLocations(await readSitemap(at)).pages);
  }
  if (pages.length === 0) throw new UsageError(`the sitemap ${where} lists no <loc> URLs`);
  return pages;
}

/** The URLs to prime: from a file of URLs, or from a sitemap file or URL (an index is followed one level). */
async function loadTargets(source: string, io: Io): Promise<string[]> {
  if (/^https?:\/\//i.test(source)) return sitemapPages(await readSitemap(source), source);
  const path = resolve(io.cwd, source);
  const text = readText(path, source);
  if (isSitemap(text)) {
    const pages = await sitemapPages(text, path);
    for (const p of pages) if (!/^https?:\/\//i.test(p) && !p.startsWith('/')) throw new UsageError(`${source}: expected each <loc> to be a URL or a path starting with /, got '${p}'`);
    return pages;
  }
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  for (const l of lines) if (!l.startsWith('/') && !/^https?:\/\//i.test(l)) throw new UsageError(`${source}: expected a URL or a path starting with /, got '${l}'`);
  return lines;
}

/** Runs `prime`; resolves with the exit status (1 when any URL failed). */
export async function runPrime(argv: readonly string[], io: Io): Promise<number> {
  const { values, positionals } = parseFlags(argv, { url: { type: 'string' }, concurrency: { type: 'string' }, timeout: { type: 'string' } }, true);
  if (values.help === true) {
    io.out(PRIME_HELP);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError('expected one file of URLs, one sitemap file or one sitemap URL (see stratacache prime --help)');
  const node = nodeUrl(values.url);
  const concurrency = parseInteger('--concurrency', values.concurrency ?? '4', 1, 1024);
  const timeout = parseDuration('--timeout', values.timeout ?? '30s');
  const targets = await loadTargets(positionals[0]!, io);

  const agent = new (node.protocol === 'https:' ? https : http).Agent({ keepAlive: true, maxSockets: concurrency });
  const started = performance.now();
  let done = 0;
  let failed = 0;
  let bytes = 0;
  const failures: string[] = [];
  const seconds = (): string => ((performance.now() - started) / 1000).toFixed(1);
  const progress = (): void => {
    const finished = done + failed;
    if (io.tty) {
      const width = 30;
      const filled = Math.round((finished / targets.length) * width);
      io.raw(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${finished}/${targets.length}  ${failed} failed  ${formatBytes(bytes)}  ${seconds()}s `);
    } else io.out(`prime: ${finished}/${targets.length} (${failed} failed, ${formatBytes(bytes)}, ${seconds()}s)`);
  };
  const ticker = setInterval(progress, io.tty ? 100 : 2_000);
  const limit = pLimit(concurrency);
  await Promise.all(
    targets.map((target) =>
      limit(async () => {
        // An absolute URL keeps its host (the cache key's host); a path is asked of the node as is.
        const absolute = /^https?:\/\//i.test(target) ? new URL(target) : undefined;
        const url = new URL(absolute === undefined ? target : absolute.pathname + absolute.search, node);
        try {
          const reply = await send(url, { agent, timeout, discardBody: true, headers: absolute === undefined ? {} : { host: absolute.host } });
          bytes += reply.body.length;
          if (reply.status < 400) done++;
          else {
            failed++;
            failures.push(`${target}: status ${reply.status}`);
          }
        } catch (error) {
          failed++;
          failures.push(`${target}: ${(error as Error).message}`);
        }
      }),
    ),
  );
  clearInterval(ticker);
  agent.destroy();
  if (io.tty) {
    progress();
    io.raw('\n');
  }
  for (const f of failures.slice(0, 10)) io.err(`failed: ${f}`);
  if (failures.length > 10) io.err(`... and ${failures.length - 10} more`);
  io.out(`primed ${done} of ${targets.length} URL(s) on ${node.origin}: ${done} done, ${failed} failed, ${formatBytes(bytes)} in ${seconds()} s`);
  return failed === 0 ? 0 : 1;
}
