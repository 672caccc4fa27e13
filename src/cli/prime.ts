/**
 * `stratacache prime <file | sitemap URL> --url NODE`: warms a node by requesting every URL through
 * it with bounded concurrency. A progress bar on a terminal, a plain line every few seconds
 * otherwise, and a summary: done, failed, bytes, time.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { resolve } from 'node:path';
import pLimit from 'p-limit';
import { formatBytes, nodeUrl, send } from './client.js';
import type { Io } from './io.js';
import { parseDuration, parseFlags, parseInteger, UsageError } from './units.js';

export const PRIME_HELP = `usage: stratacache prime <file-of-URLs | sitemap URL> --url NODE [--concurrency N]

Requests every URL through the node so that its cache holds them. The list is a file with one
URL or path per line (blank lines and # comments skipped), or a sitemap (or sitemap index) URL.
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

/** The URLs to prime: from a file, or from a sitemap (an index is followed one level). */
async function loadTargets(source: string, io: Io): Promise<string[]> {
  if (/^https?:\/\//i.test(source)) {
    const fetchXml = async (url: string): Promise<string> => {
      let reply;
      try {
        reply = await send(new URL(url), { timeout: 30_000 });
      } catch (error) {
        throw new UsageError(`cannot read the sitemap ${url}: ${(error as Error).message}`);
      }
      if (reply.status !== 200) throw new UsageError(`cannot read the sitemap ${url}: status ${reply.status}`);
      return reply.body.toString('utf8');
    };
    const top = sitemapLocations(await fetchXml(source));
    const pages = [...top.pages];
    for (const nested of top.sitemaps) pages.push(...sitemapLocations(await fetchXml(nested)).pages);
    if (pages.length === 0) throw new UsageError(`the sitemap ${source} lists no <loc> URLs`);
    return pages;
  }
  let text: string;
  try {
    text = readFileSync(resolve(io.cwd, source), 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read ${source}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
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
  if (positionals.length !== 1) throw new UsageError('expected one file of URLs or one sitemap URL (see stratacache prime --help)');
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
