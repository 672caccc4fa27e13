/**
 * ESI templates: `<esi:include src="/path"/>` tags in an HTML body, parsed once per stored entry
 * and filled at serve time. Only same-origin relative `src` values (a path starting with one
 * `/`) are filled here; any other include is left in the page as written, so an ESI processor
 * further out (a CDN) can still resolve it, and page markup never makes this server request an
 * arbitrary host.
 */

/** One include tag. */
export interface Include {
  /** The path to request (entities decoded). */
  readonly src: string;
  /** `onerror="continue"`: a failing include is dropped instead of failing the page (ESI 1.0 §3.1). */
  readonly continueOnError: boolean;
}

/** A template: literal bytes and includes, in order. */
export type Segment = Buffer | Include;

const MARK = '<esi:include';
const TAG = /<esi:include\b((?:[^>"']|"[^"]*"|'[^']*')*?)\s*(?:\/>|>\s*<\/esi:include\s*>|>)/g;
const ATTR = /([a-zA-Z_:][-\w:.]*)\s*=\s*(?:"([^"]*)"|'([^']*)')/g;

/** True when a body may hold include tags (a byte search, no parsing). */
export function hasIncludes(body: Buffer): boolean {
  return body.includes(MARK);
}

/** True for an HTML media type. */
export function isHtml(contentType: unknown): boolean {
  return typeof contentType === 'string' && /^\s*text\/html\b/i.test(contentType);
}

/** A same-origin relative path: one leading slash, no scheme, no backslash tricks. */
export function isLocalPath(src: string): boolean {
  return src.startsWith('/') && !src.startsWith('//') && !src.includes('\\');
}

const decodeEntities = (s: string): string =>
  s.replace(/&(amp|lt|gt|quot|#39|apos);/g, (_, e: string) => ({ amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'", apos: "'" })[e] ?? _);

/**
 * Splits a body into literal bytes and includes. Offsets are found on a latin1 view, whose
 * characters are the body's bytes one for one, so any encoding survives the split untouched.
 */
export function parseTemplate(body: Buffer): Segment[] {
  const text = body.toString('latin1');
  const out: Segment[] = [];
  let last = 0;
  TAG.lastIndex = 0;
  for (let m = TAG.exec(text); m !== null; m = TAG.exec(text)) {
    const attrs = new Map<string, string>();
    ATTR.lastIndex = 0;
    for (let a = ATTR.exec(m[1] ?? ''); a !== null; a = ATTR.exec(m[1] ?? '')) attrs.set(a[1]!.toLowerCase(), a[2] ?? a[3] ?? '');
    const src = decodeEntities(attrs.get('src') ?? '');
    if (!isLocalPath(src)) continue; // left as written (see the module comment)
    if (m.index > last) out.push(body.subarray(last, m.index));
    out.push({ src, continueOnError: attrs.get('onerror')?.toLowerCase() === 'continue' });
    last = m.index + m[0].length;
  }
  if (last < body.length) out.push(body.subarray(last));
  return out;
}

/**
 * The template of an HTML body, or undefined when it has no include this server fills (none at
 * all, or only includes left as written): such a body is served as stored, on the plain hit path.
 */
export function templateOf(body: Buffer): Segment[] | undefined {
  if (!hasIncludes(body)) return undefined;
  const segments = parseTemplate(body);
  return segments.some((s) => !Buffer.isBuffer(s)) ? segments : undefined;
}
