/**
 * The representation a hit sends: the identity entry, or its compressed body as an entry of its
 * own (memoized per entry in a WeakMap, so serve.ts builds its header list once per coding). A compressed
 * representation never carries the identity body's ETag: it gets a suffixed one (RFC 9110 §8.8.3:
 * different content, different strong validator), its own Content-Length (computed by serve.ts
 * from its body) and `Content-Encoding`. Range requests get the identity body.
 */
import type { IncomingMessage } from 'node:http';
import type { Entry } from '../entry.js';
import { chooseCoding, type Coding } from './negotiate.js';

/** `"x"` → `"x-br"`, `W/"x"` → `W/"x-br"`. */
export function suffixTag(tag: string, coding: Coding): string {
  const end = tag.lastIndexOf('"');
  return end > 0 ? `${tag.slice(0, end)}-${coding}${tag.slice(end)}` : `${tag}-${coding}`;
}

/** Each entry as sent in each coding, built on its first serve in that coding (the entry stays plain data). */
const viewsOf = new WeakMap<Entry, Partial<Record<Coding, Entry>>>();

/** The entry as sent in `coding`. */
export function encodedView(entry: Entry, coding: Coding): Entry {
  let views = viewsOf.get(entry);
  if (views === undefined) viewsOf.set(entry, (views = {}));
  const known = views[coding];
  if (known !== undefined) return known;
  const etag = entry.etag === undefined ? undefined : suffixTag(entry.etag, coding);
  const headers: Entry['headers'] = [];
  for (const pair of entry.headers) {
    if (pair[0] === 'content-length') continue;
    if (pair[0] === 'etag') {
      if (etag !== undefined) headers.push(['etag', etag]);
    } else headers.push(pair);
  }
  headers.push(['content-encoding', coding]);
  // A body still in its file (see BodySource) is sent from that file's compressed section.
  const view: Entry =
    entry.source === undefined
      ? { ...entry, body: entry.encoded![coding]!, headers, etag, encoded: undefined }
      : { ...entry, headers, etag, source: entry.source.as(coding) };
  views[coding] = view;
  return view;
}

/** Picks representations for requests; the choice is memoized per Accept-Encoding value. */
export class Representations {
  /** Server preference among codings an entry has (the configured order, then the rest). */
  readonly #order: readonly Coding[];
  readonly #memo = new Map<string, Coding | 'identity'>();

  constructor(preferred: readonly Coding[]) {
    this.#order = [...preferred, ...(['br', 'zstd', 'gzip'] as const).filter((c) => !preferred.includes(c))];
  }

  /** What `req` gets of `entry` (which has `encoded` bodies, or a `source` that may hold some). */
  pick(req: IncomingMessage, entry: Entry): Entry {
    // RFC 9110 §14.2: byte ranges are of the identity body (what serve.ts slices).
    if (req.headers.range !== undefined) return entry;
    const { encoded, source } = entry;
    const available = this.#order.filter((c) => (source === undefined ? encoded![c] !== undefined : source.codings.includes(c)));
    const header = req.headers['accept-encoding'];
    const memoKey = `${available.join(',')}\n${header ?? ''}`;
    let coding = this.#memo.get(memoKey);
    if (coding === undefined) {
      coding = chooseCoding(header, available);
      if (this.#memo.size >= 512) this.#memo.clear();
      this.#memo.set(memoKey, coding);
    }
    return coding === 'identity' ? entry : encodedView(entry, coding);
  }
}
