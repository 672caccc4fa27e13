/**
 * Explain (`GET /_stratacache/explain?url=...`, `stratacache explain URL`): for one URL, its key
 * and variant keys, where each variant is (memory, each store, a peer), its freshness times, Age,
 * validators, tags and data dependencies, the per-route rule that applies, the recent
 * invalidations that reached it, and the last outcome of a response for it (stored, passed,
 * refused) from a small bounded memory fed by the cache's `store` and `pass` events. Read-only:
 * nothing here renders, promotes or counts a request.
 */
import { boundedLru } from '../lru.js';
import type { EventEmitter } from 'node:events';
import type { Entry } from '../entry.js';
import { Epochs, type EpochVerdict } from '../invalidation/epochs.js';
import type { InvalidationRecord } from '../invalidation/log.js';
import type { ResolvedOptions } from '../options/types.js';
import { peerCounters, type PeerCluster } from '../peers/cluster.js';
import type { CompiledRule } from '../rules.js';
import type { CacheStore } from '../stores/store.js';

/** Where explain answers (behind the flush endpoint's guard, like the stats endpoint). */
export const EXPLAIN_PATH = '/_stratacache/explain';

/** How many keys the last-outcome memory holds, and how many invalidations an explanation lists. */
export const OUTCOMES_KEPT = 1000;
export const INVALIDATIONS_LISTED = 20;

/** What happened to the last response rendered for a key. */
export interface Outcome {
  /** Epoch ms. */
  at: number;
  /** `stored`; `passed` (not looked up: method, bypass, hit-for-miss...); `refused` (rendered, not storable). */
  outcome: 'stored' | 'passed' | 'refused';
  /** The reason of a pass or refusal (`set-cookie`, `status 500`, `too large`, `bypass`...). */
  reason?: string;
}

/** The event payload the outcome memory reads (`CacheEvent`'s fields it needs). */
interface OutcomeEvent {
  key: string;
  status?: string;
  reason?: string;
}

/** A bounded LRU of the last outcome per key, fed by the cache's `store` and `pass` events. */
export class Outcomes {
  readonly #last = boundedLru<string, Outcome>(OUTCOMES_KEPT);
  readonly #off: () => void;

  constructor(events: EventEmitter, now: () => number = Date.now) {
    const onStore = (e: OutcomeEvent): void => void this.#last.set(e.key, { at: now(), outcome: 'stored' });
    // A pass before any lookup carries status PASS; a render that could not be stored carries none.
    const onPass = (e: OutcomeEvent): void => {
      if (e.key !== '') this.#last.set(e.key, { at: now(), outcome: e.status === 'PASS' ? 'passed' : 'refused', reason: e.reason ?? '' });
    };
    events.on('store', onStore);
    events.on('pass', onPass);
    this.#off = () => {
      events.off('store', onStore);
      events.off('pass', onPass);
    };
  }

  /** The most recent outcome among `keys`. */
  latest(keys: readonly string[]): Outcome | undefined {
    let best: Outcome | undefined;
    for (const key of keys) {
      const o = this.#last.get(key);
      if (o !== undefined && (best === undefined || o.at >= best.at)) best = o;
    }
    return best;
  }

  close(): void {
    this.#off();
  }
}

/** One stored copy, as explain shows it. */
export interface EntryReport {
  status: number;
  /** `fresh`, `stale-while-revalidate`, `stale-if-error` (servable only if the origin fails), `stale` (kept to revalidate). */
  state: 'fresh' | 'stale-while-revalidate' | 'stale-if-error' | 'stale';
  /** Seconds of freshness left (negative once stale), as Cache-Status `ttl`. */
  ttl: number;
  /** The `Age` a hit would send now, in seconds. */
  age: number;
  storedAt: string;
  staleAt: string;
  swrUntil: string;
  sieUntil: string;
  expiresAt: string;
  etag: string | null;
  lastModified: string | null;
  tags: string[];
  /** Data-cache keys the render read. */
  deps: string[];
  bytes: number;
  vary: string[];
  /** The newest invalidation reaching this copy (it is served stale during grace, or not at all when hard). */
  invalidated: { at: string; hard: boolean } | null;
}

/** One variant key and where it is. */
export interface VariantReport {
  key: string;
  /** The variant the explain request's own headers select. */
  selected: boolean;
  /** Each tier, fastest first: whether it holds the key (`error` when the store failed). */
  tiers: Array<{ tier: string; found: boolean; error?: string }>;
  /** The copy of the fastest tier that has it. */
  entry: EntryReport | null;
}

/** What explain answers. */
export interface Explanation {
  url: string;
  host: string;
  /** The primary key, or null when the URL cannot be cached. */
  key: string | null;
  rule: (Omit<CompiledRule, 'cacheStatuses'> & { cacheStatuses: number[] | null }) | null;
  /** A rule bypasses the cache for GET requests to this URL. */
  bypass: boolean;
  /** The Vary names stored responses of this URL use. */
  vary: string[];
  variants: VariantReport[];
  /** With peers: the peer that has the selected variant (null: none answered with one). */
  peer: string | null;
  /** Why later requests pass straight to the origin (hit-for-miss), while that lasts. */
  passing: string | null;
  /** The last response rendered for it: stored, passed or refused, and why. */
  last: (Omit<Outcome, 'at'> & { at: string }) | null;
  /** Recent invalidations (this node's log) that reach it, newest first. */
  invalidations: Array<{ id: number; at: string; origin: string; paths: readonly string[]; tags: readonly string[]; scope: string; hard: boolean }>;
  now: string;
}

/** What explain reads: public methods of the engine's parts, wired by `cache.ts`. */
export interface ExplainParts {
  options: ResolvedOptions;
  memory: { get(key: string, now?: number): Entry | undefined };
  lower: readonly CacheStore[];
  variants: { names(primary: string): string[] | undefined; keysOf(primary: string): readonly string[]; keyFor(primary: string, headers: Record<string, string | string[] | undefined>): string };
  primaryOf: (url: string, host: string) => string | undefined;
  verdict: (entry: Entry) => EpochVerdict | undefined;
  log: () => readonly InvalidationRecord[];
  passReason: (primary: string) => string | undefined;
  outcomes: Outcomes;
  peers: PeerCluster | undefined;
}

const iso = (ms: number): string => new Date(ms).toISOString();

/** The state of a copy at `now`. */
function stateOf(entry: Entry, now: number): EntryReport['state'] {
  if (now < entry.staleAt) return 'fresh';
  if (now < entry.swrUntil) return 'stale-while-revalidate';
  if (now < entry.sieUntil) return 'stale-if-error';
  return 'stale';
}

function entryReport(entry: Entry, verdict: EpochVerdict | undefined, now: number): EntryReport {
  return {
    status: entry.status,
    state: stateOf(entry, now),
    ttl: Math.floor((entry.staleAt - now) / 1000),
    age: Math.max(0, entry.initialAge + Math.floor((now - entry.storedAt) / 1000)),
    storedAt: iso(entry.storedAt),
    staleAt: iso(entry.staleAt),
    swrUntil: iso(entry.swrUntil),
    sieUntil: iso(entry.sieUntil),
    expiresAt: iso(entry.expiresAt),
    etag: entry.etag ?? null,
    lastModified: entry.lastModified ?? null,
    tags: [...entry.tags],
    deps: [...(entry.deps ?? [])],
    bytes: entry.source?.length ?? entry.body.length,
    vary: [...entry.vary],
    invalidated: verdict === undefined ? null : { at: iso(verdict.at), hard: verdict.hard },
  };
}

/**
 * Whether `record` reaches a copy of `url` with `tags` stored just before it: the same rule the
 * engine applies (one {@link Epochs} holding that record alone), so nothing is written twice.
 */
function reaches(record: InvalidationRecord, subject: { url: string; tags: readonly string[] }, options: ResolvedOptions): boolean {
  const epochs = new Epochs({ statLevel: options.statLevel, autoInvalidate: options.autoInvalidate, maxEpochs: 1000 });
  epochs.record(record, record.at);
  return epochs.check({ url: subject.url, tags: subject.tags, storedAt: record.at - 1 }) !== undefined;
}

/** Explains `url` (absolute, or a path on `host`) as a GET with `headers` would find it. */
export async function explain(parts: ExplainParts, at: { url: string; host: string; headers: Record<string, string | string[] | undefined> }): Promise<Explanation> {
  const { options } = parts;
  const now = Date.now();
  let target = at.url;
  let host = at.host;
  if (/^https?:\/\//i.test(target)) {
    const u = new URL(target);
    host = u.host;
    target = u.pathname + u.search;
  }
  const rule = options.rules?.match('GET', host, target);
  const primary = parts.primaryOf(target, host) ?? null;
  const report: Explanation = {
    url: target,
    host,
    key: primary,
    rule: rule === undefined ? null : { ...rule, cacheStatuses: rule.cacheStatuses === undefined ? null : [...rule.cacheStatuses] },
    bypass: rule?.bypass === true,
    vary: [],
    variants: [],
    peer: null,
    passing: null,
    last: null,
    invalidations: [],
    now: iso(now),
  };
  if (primary === null) return report;
  const vary = parts.variants.names(primary) ?? [];
  report.vary = vary;
  const selected = vary.length === 0 ? primary : parts.variants.keyFor(primary, at.headers);
  const keys = [...new Set([primary, ...parts.variants.keysOf(primary), selected])];
  const tags = new Set(rule?.tags ?? []);
  for (const key of keys) {
    const variant = await variantReport(parts, key, now);
    variant.selected = key === selected;
    for (const t of variant.entry?.tags ?? []) tags.add(t);
    // The bare primary key of a varying URL holds only the marker lower tiers keep: listed when found.
    if (key !== primary || vary.length === 0 || variant.entry !== null) report.variants.push(variant);
  }
  if (parts.peers !== undefined) {
    const headers: Record<string, string> = {};
    for (const name of vary) {
      const v = at.headers[name];
      if (v !== undefined) headers[name] = Array.isArray(v) ? v.join(', ') : v;
    }
    const scratch = peerCounters();
    const hit = await parts.peers.find({ ns: 'r', key: primary, headers, freshAt: undefined }, () => true, scratch);
    report.peer = hit?.peer ?? null;
  }
  report.passing = parts.passReason(primary) ?? null;
  const last = parts.outcomes.latest(keys);
  report.last = last === undefined ? null : { ...last, at: iso(last.at) };
  const subject = { url: target, tags: [...tags] };
  const touching = parts
    .log()
    .filter((r) => reaches(r, subject, options))
    .slice(-INVALIDATIONS_LISTED)
    .reverse();
  report.invalidations = touching.map((r) => ({ id: r.id, at: iso(r.at), origin: r.source?.node ?? r.origin, paths: r.paths, tags: r.tags, scope: r.scope, hard: r.hard }));
  return report;
}

async function variantReport(parts: ExplainParts, key: string, now: number): Promise<VariantReport> {
  const tiers: VariantReport['tiers'] = [];
  let first: Entry | undefined = parts.memory.get(key, now);
  tiers.push({ tier: 'memory', found: first !== undefined });
  for (const store of parts.lower) {
    try {
      const found = await store.get(key);
      const live = found !== undefined && now < found.expiresAt;
      tiers.push({ tier: store.name, found: live });
      if (live) first ??= found;
    } catch (error) {
      tiers.push({ tier: store.name, found: false, error: error instanceof Error ? error.message : String(error) });
    }
  }
  return { key, selected: false, tiers, entry: first === undefined ? null : entryReport(first, parts.verdict(first), now) };
}
