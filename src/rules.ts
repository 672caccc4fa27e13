/**
 * Per-route rules (`options.rules`): lifetimes, stale windows, stored statuses, bypass and tags
 * declared per path glob (optionally per method and host), compiled once at construction into
 * one RegExp each. The first matching rule applies. `policy.ts` reads a rule's freshness fields;
 * the bypass predicate and the tags are read where the request is received and where an entry
 * is stored. A leaf: imports only the validation helpers.
 */
import type { Milliseconds } from './options/units.js';
import { fail, integerOption, objectOption } from './options/validate.js';

/** One per-route rule. Only `match` is required; an absent field leaves the global option in force. */
export interface RouteRule {
  /**
   * Glob on the request path (no query): `*` matches within one segment (no `/`), `**` matches
   * anything (`/` included), and a trailing `/**` also matches the bare prefix (`/blog/**`
   * matches `/blog`, `/blog/a` and `/blog/a/b`). Other characters match themselves.
   */
  match: string;
  /**
   * Methods the rule applies to (upper-case), one or a list. HEAD counts as GET.
   * @default undefined (every method)
   */
  method?: string | readonly string[];
  /**
   * Glob on the request's host, port left out, case-insensitive: `*` matches within one label
   * (`*.example.com`).
   * @default undefined (every host)
   */
  host?: string;
  /**
   * Freshness lifetime in ms given to a matching response whose origin sends no explicit
   * freshness (no `max-age`, `s-maxage` or `Expires`), in place of `defaultTtl`; capped by
   * `maxTtl`. With `override: true` it replaces the origin's explicit freshness too. `0` stores
   * such responses only when the origin makes them explicitly fresh.
   * @default undefined (`defaultTtl`)
   */
  ttl?: Milliseconds;
  /**
   * In ms, in place of the global `staleWhileRevalidate` for matching responses (the origin's
   * RFC 5861 directive still wins unless `override: true`). `0`: only the directive.
   * @default undefined (the global option)
   */
  staleWhileRevalidate?: Milliseconds;
  /**
   * In ms, in place of the global `staleIfError` for matching responses (the origin's directive
   * still wins unless `override: true`). `0`: only the directive.
   * @default undefined (the global option)
   */
  staleIfError?: Milliseconds;
  /**
   * Statuses stored without explicit freshness for matching responses, in place of the global
   * `cacheStatuses` (nginx's per-status `proxy_cache_valid`). 206 and 304 are never stored.
   * @default undefined (the global option)
   */
  cacheStatuses?: readonly number[];
  /**
   * `true`: matching requests go straight to the handler (status `PASS`), never stored, as the
   * global `bypass` predicate does.
   * @default false
   */
  bypass?: boolean;
  /**
   * Tags given to every entry stored for a matching request, besides those of the origin's tag
   * header (`tagHeader`): `invalidateTags()` and a tag flush reach them.
   * @default []
   */
  tags?: readonly string[];
  /**
   * `true`: `ttl`, `staleWhileRevalidate` and `staleIfError` replace what the origin's
   * `Cache-Control`/`Expires` say about freshness. It never makes a `private`, `no-store` or
   * `no-cache` response, a `Set-Cookie` response or a personalised request storable.
   * @default false (the origin's explicit freshness wins)
   */
  override?: boolean;
  /**
   * The rule's name in `Cache-Status` detail and in explain.
   * @default the `match` glob
   */
  name?: string;
}

/** A rule after validation, with its compiled matchers. */
export interface CompiledRule {
  /** The rule's position in `options.rules`. */
  readonly index: number;
  readonly name: string;
  readonly ttl: Milliseconds | undefined;
  readonly staleWhileRevalidate: Milliseconds | undefined;
  readonly staleIfError: Milliseconds | undefined;
  readonly cacheStatuses: ReadonlySet<number> | undefined;
  readonly bypass: boolean;
  readonly tags: readonly string[];
  readonly override: boolean;
}

interface Matcher {
  readonly path: RegExp;
  readonly host: RegExp | undefined;
  readonly methods: ReadonlySet<string> | undefined;
  readonly rule: CompiledRule;
}

const RULE_FIELDS = new Set(['match', 'method', 'host', 'ttl', 'staleWhileRevalidate', 'staleIfError', 'cacheStatuses', 'bypass', 'tags', 'override', 'name']);

/** Tags as the tag header and the flush endpoint accept them: visible ASCII, no spaces or commas. */
const TAG = /^[\x21-\x2b\x2d-\x7e]+$/;

const escape = (s: string): string => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&');

/**
 * A path glob as one anchored RegExp: `**` anything, `*` anything but `/`, a trailing `/**` also
 * the bare prefix.
 */
export function pathGlob(glob: string): RegExp {
  let tail = '';
  let body = glob;
  if (body.endsWith('/**')) {
    body = body.slice(0, -3);
    tail = '(?:/.*)?';
  }
  const source = body
    .split('**')
    .map((part) => part.split('*').map(escape).join('[^/]*'))
    .join('.*');
  return new RegExp(`^${source}${tail}$`);
}

/** A host glob: `*` within one label, case-insensitive. */
function hostGlob(glob: string): RegExp {
  return new RegExp(`^${glob.split('*').map(escape).join('[^.]*')}$`, 'i');
}

/** The path of an origin-form or absolute-form target, without its query. */
export function pathOf(url: string): string {
  let start = 0;
  if (!url.startsWith('/')) {
    const scheme = url.indexOf('://');
    if (scheme !== -1) {
      const slash = url.indexOf('/', scheme + 3);
      if (slash === -1) return '/';
      start = slash;
    }
  }
  const q = url.indexOf('?', start);
  return q === -1 ? url.slice(start) : url.slice(start, q);
}

/** A Host header's name without its port (IPv6 literals keep their brackets). */
export function hostOf(host: string | string[] | undefined): string {
  const h = Array.isArray(host) ? (host[0] ?? '') : (host ?? '');
  const end = h.startsWith('[') ? h.indexOf(']') + 1 : h.indexOf(':');
  return (end <= 0 ? h : h.slice(0, end)).toLowerCase();
}

/** The compiled rules of one cache: the first match for a request, in declaration order. */
export class RuleSet {
  readonly #matchers: readonly Matcher[];
  /** The compiled rules, in order. */
  readonly rules: readonly CompiledRule[];
  /** True when some rule bypasses (the request path then asks {@link bypasses}). */
  readonly bypassing: boolean;

  constructor(matchers: readonly Matcher[]) {
    this.#matchers = matchers;
    this.rules = matchers.map((m) => m.rule);
    this.bypassing = this.rules.some((r) => r.bypass);
  }

  /** The first rule matching `method`, `host` (a Host header value) and the target `url`. */
  match(method: string, host: string | string[] | undefined, url: string): CompiledRule | undefined {
    const path = pathOf(url);
    const m = method === 'HEAD' ? 'GET' : method;
    let name: string | undefined;
    for (const matcher of this.#matchers) {
      if (!matcher.path.test(path)) continue;
      if (matcher.methods !== undefined && !matcher.methods.has(m)) continue;
      if (matcher.host !== undefined && !matcher.host.test((name ??= hostOf(host)))) continue;
      return matcher.rule;
    }
    return undefined;
  }

  /** Whether the first rule matching the request says `bypass`. */
  bypasses(req: { method?: string | undefined; url?: string | undefined; headers: { host?: string | undefined } }): boolean {
    return this.match(req.method ?? 'GET', req.headers.host, req.url ?? '/')?.bypass === true;
  }
}

const optionalMs = (path: string, value: unknown): number | undefined => (value === undefined ? undefined : integerOption(path, value, 0));

function compileRule(path: string, value: unknown, index: number): Matcher {
  objectOption(path, value, 'a rule object ({ match, ttl, ... })');
  const r = value as Record<string, unknown>;
  for (const name of Object.keys(r)) if (!RULE_FIELDS.has(name)) throw new TypeError(`unknown option options.${path}.${name}`);
  if (typeof r.match !== 'string' || !r.match.startsWith('/')) fail(TypeError, `${path}.match`, "a path glob starting with '/'", r.match);
  let methods: Set<string> | undefined;
  if (r.method !== undefined) {
    const list = typeof r.method === 'string' ? [r.method] : r.method;
    if (!Array.isArray(list) || list.length === 0) fail(TypeError, `${path}.method`, 'a method or a non-empty array of methods', r.method);
    methods = new Set(
      list.map((m: unknown, i) => {
        if (typeof m !== 'string' || !/^[A-Za-z]+$/.test(m)) fail(TypeError, `${path}.method[${i}]`, 'an HTTP method', m);
        const upper = m.toUpperCase();
        return upper === 'HEAD' ? 'GET' : upper;
      }),
    );
  }
  if (r.host !== undefined && (typeof r.host !== 'string' || !/^[A-Za-z0-9*.-]+$/.test(r.host))) fail(TypeError, `${path}.host`, 'a host name glob', r.host);
  let cacheStatuses: Set<number> | undefined;
  if (r.cacheStatuses !== undefined) {
    if (!Array.isArray(r.cacheStatuses)) fail(TypeError, `${path}.cacheStatuses`, 'an array of status codes', r.cacheStatuses);
    cacheStatuses = new Set(r.cacheStatuses.map((s: unknown, i) => integerOption(`${path}.cacheStatuses[${i}]`, s, 100, 599)));
  }
  const flag = (name: 'bypass' | 'override'): boolean => {
    const v = r[name] ?? false;
    if (typeof v !== 'boolean') fail(TypeError, `${path}.${name}`, 'a boolean', v);
    return v;
  };
  const tags = r.tags ?? [];
  if (!Array.isArray(tags)) fail(TypeError, `${path}.tags`, 'an array of tags', tags);
  tags.forEach((t: unknown, i) => {
    if (typeof t !== 'string' || !TAG.test(t)) fail(TypeError, `${path}.tags[${i}]`, 'a tag (visible ASCII, no spaces or commas)', t);
  });
  if (r.name !== undefined && (typeof r.name !== 'string' || r.name === '')) fail(TypeError, `${path}.name`, 'a non-empty string', r.name);
  const rule: CompiledRule = Object.freeze({
    index,
    name: (r.name as string | undefined) ?? r.match,
    ttl: optionalMs(`${path}.ttl`, r.ttl),
    staleWhileRevalidate: optionalMs(`${path}.staleWhileRevalidate`, r.staleWhileRevalidate),
    staleIfError: optionalMs(`${path}.staleIfError`, r.staleIfError),
    cacheStatuses,
    bypass: flag('bypass'),
    tags: Object.freeze([...(tags as string[])]),
    override: flag('override'),
  });
  return { path: pathGlob(r.match), host: r.host === undefined ? undefined : hostGlob(r.host as string), methods, rule };
}

/**
 * Validates and compiles `options.rules`; undefined when there are none (nothing is matched per
 * request then).
 * @throws TypeError or RangeError naming the rule's path (`options.rules[2].ttl`).
 */
export function resolveRules(value: unknown, path = 'rules'): RuleSet | undefined {
  if (!Array.isArray(value)) fail(TypeError, path, 'an array of rules', value);
  if (value.length > 1000) fail(RangeError, path, 'at most 1000 rules', value.length);
  if (value.length === 0) return undefined;
  return new RuleSet(value.map((rule, i) => compileRule(`${path}[${i}]`, rule, i)));
}
