/**
 * Publications across a cluster: the same flush sent to every node (AEM sends one per
 * dispatcher; with propagation each node also hears the others' copies) is recognised as one
 * publication within {@link DUPLICATE_WINDOW}; its refetch list is rendered once per cluster, by
 * each URL's rendezvous owner among live nodes, and the other nodes wait for the owner's copy.
 */
import createDebug from 'debug';
import { boundedLru } from '../lru.js';
import { ageOf, type Entry } from '../entry.js';
import type { PeerCluster } from '../peers/cluster.js';
import { acceptPeerEntry } from '../peers/judge.js';
import type { PublicationCounters } from '../stats.js';
import type { Epochs } from './epochs.js';
import type { RefetchSummary, RefetchTarget, Refetcher } from './refetch.js';

const debug = createDebug('stratacache:refetch');

/**
 * How long in ms an invalidation with the same content (paths, scope, hard, tags, refetch list)
 * arriving from another node counts as the same publication: AEM sends one flush per dispatcher,
 * and with propagation each node also hears the others' copies.
 */
export const DUPLICATE_WINDOW = 10_000;

/**
 * How long in ms a node that does not refetch a URL itself waits for the peer that does (the
 * rendezvous owner among live nodes) before rendering it itself. Meanwhile its old copy is served.
 */
export const PEER_REFETCH_WAIT = 5_000;

/** One publication as this node saw it (see {@link DUPLICATE_WINDOW}). */
export interface Publication {
  /** Local time it was first applied. */
  seenAt: number;
  /** Earliest and latest `at` of its records here. */
  first: number;
  last: number;
  /** Nodes (base URLs; `''` for a node without `peers.self`) it came from. */
  nodes: Set<string>;
}

/** The content that identifies a publication. */
export interface PublicationContent {
  paths: readonly string[];
  scope: string;
  hard: boolean;
  tags: readonly string[];
  refetch: readonly string[];
}

/** What publications need from the cache. */
export interface PublicationContext {
  /** This node's base URL (`peers.self`). */
  self: string | undefined;
  /** `invalidation.propagate`. */
  propagate: boolean;
  peers: PeerCluster | undefined;
  refetcher: Refetcher;
  epochs: Epochs;
  /** What a peer's copy must pass besides freshness. */
  accept: { cacheStatuses: ReadonlySet<number>; maxEntrySize: number };
  /** Stores a peer's copy under `primary` (no Vary selection: the request headers are empty). */
  store(primary: string, entry: Entry): void;
  /** The `storedAt` for something starting now. */
  renderTime(): number;
  /** True once the cache is closing. */
  closed(): boolean;
  /** Reports a copy taken from the peer that refetched it. */
  tookCopy(target: RefetchTarget, peer: string): void;
}

/** Recent publications and the peer copies this node waits for. */
export class Publications {
  readonly counters: PublicationCounters = { invalidationDuplicates: 0, peerRefetches: 0 };
  readonly #ctx: PublicationContext;
  /** Publications seen recently, by content (see {@link DUPLICATE_WINDOW}). */
  readonly #groups = boundedLru<string, Publication>(10_000);
  /** Primary keys another node is refetching: their old copy stays servable and no local refresh starts. */
  readonly #awaiting = new Map<string, { group: Publication; deadline: number; done: Promise<void> }>();

  constructor(ctx: PublicationContext) {
    this.#ctx = ctx;
  }

  /** True while another node refetches `primary` for the cluster and this node waits for its copy. */
  awaiting(primary: string): boolean {
    return this.#awaiting.size > 0 && this.#awaiting.has(primary);
  }

  /** Settles when the wait for `primary`'s peer copy ends (undefined when none is awaited). */
  waitFor(primary: string): Promise<void> | undefined {
    return this.#awaiting.size > 0 ? this.#awaiting.get(primary)?.done : undefined;
  }

  /**
   * Finds or starts the publication a record belongs to. Another node's copy of a publication
   * seen here moments ago is a duplicate; the same node sending the same content again is a new
   * publication (or a flush agent's retry): applied in full.
   */
  classify(content: PublicationContent, at: { at: number; node: string }): { group: Publication; duplicate: boolean } {
    const sorted = (a: readonly string[]): string[] => [...a].sort();
    const id = JSON.stringify([sorted(content.paths), content.scope, content.hard, sorted(content.tags), sorted(content.refetch)]);
    const now = Date.now();
    const known = this.#groups.get(id);
    if (known !== undefined && now - known.seenAt < DUPLICATE_WINDOW && !known.nodes.has(at.node)) {
      known.nodes.add(at.node);
      known.first = Math.min(known.first, at.at);
      known.last = Math.max(known.last, at.at);
      this.counters.invalidationDuplicates++;
      return { group: known, duplicate: true };
    }
    const group: Publication = { seenAt: now, first: at.at, last: at.at, nodes: new Set([at.node]) };
    this.#groups.set(id, group);
    return { group, duplicate: false };
  }

  /**
   * Refetches targets once for the cluster: with peers and propagation, a target is rendered here
   * only when this node is its rendezvous owner among live nodes; for the others this node waits
   * for the owner's copy. Without peers, everything is rendered here.
   */
  async refetch(targets: RefetchTarget[], group: Publication): Promise<RefetchSummary> {
    const { peers: cluster, self, refetcher } = this.#ctx;
    if (cluster === undefined || !this.#ctx.propagate || self === undefined || cluster.peers.length === 0) return refetcher.run(targets);
    const mine: RefetchTarget[] = [];
    const theirs: RefetchTarget[] = [];
    for (const t of targets) ((cluster.liveOwner(t.primary) ?? self) === self ? mine : theirs).push(t);
    debug('refetch: %d here, %d on their owners', mine.length, theirs.length);
    const results = await Promise.all([refetcher.run(mine), ...theirs.map((t) => this.#awaitPeerCopy(t, group))]);
    return results.reduce((a, b) => ({ ok: a.ok + b.ok, failed: a.failed + b.failed }), { ok: 0, failed: 0 });
  }

  /**
   * Waits for the node refetching `target` to have its new copy, asking the peers with growing
   * pauses for at most {@link PEER_REFETCH_WAIT}; meanwhile the old copy here is served (as for a
   * local refetch). A copy is taken only when it was rendered after the publication reached the
   * cluster (`group.first`) and no later invalidation reaches it; it is stored here restamped to
   * now (its Age kept), so this node's own record of the publication does not refuse it. When
   * none shows up in time (the owner is down or its render failed), this node renders it.
   * Client requests with nothing servable here wait for this (see {@link waitFor}) instead of rendering.
   */
  async #awaitPeerCopy(target: RefetchTarget, group: Publication): Promise<RefetchSummary> {
    const ctx = this.#ctx;
    const { primary } = target;
    // A local refetch of it is already queued: that render will do.
    if (ctx.refetcher.has(primary)) return { ok: 0, failed: 0 };
    const waiting = this.#awaiting.get(primary);
    if (waiting !== undefined) {
      // Already waiting (an earlier publication): wait for this one's copy instead, from now.
      waiting.group = group;
      waiting.deadline = Date.now() + PEER_REFETCH_WAIT;
      return { ok: 0, failed: 0 };
    }
    let finished!: () => void;
    const wait = { group, deadline: Date.now() + PEER_REFETCH_WAIT, done: new Promise<void>((resolve) => (finished = resolve)) };
    this.#awaiting.set(primary, wait);
    let pause = 10;
    // The node expected to render it; once its breaker opens (it is known down or hung) nobody
    // waits for it any longer: this node renders the page at once.
    const owner = ctx.peers!.liveOwner(primary);
    try {
      while (!ctx.closed() && Date.now() < wait.deadline) {
        if (ctx.peers!.liveOwner(primary) !== owner) {
          debug('refetch %s: owner %s is down, rendering here', primary, owner);
          break;
        }
        // Not unref'd: close() may be awaiting this loop, and an unref'd timer as the only thing
        // left would let the process exit mid-await (exit code 13). It ends on closed() anyway.
        await new Promise((resolve) => setTimeout(resolve, pause));
        pause = Math.min(pause * 2, 200);
        if (ctx.closed()) return { ok: 0, failed: 0 };
        const hit = await ctx.peers!.find({ ns: 'r', key: primary, headers: {}, freshAt: Date.now() }, (entry) => this.#acceptRefetched(entry, primary, wait.group));
        if (hit === undefined) continue;
        const now = ctx.renderTime();
        const copy: Entry = { ...hit.entry, storedAt: now, initialAge: ageOf(hit.entry, now) };
        ctx.store(primary, copy);
        this.counters.peerRefetches++;
        debug('refetch %s: took the copy of %s', primary, hit.peer);
        ctx.tookCopy(target, hit.peer);
        return { ok: 1, failed: 0 };
      }
    } finally {
      this.#awaiting.delete(primary);
      finished();
    }
    if (ctx.closed()) return { ok: 0, failed: 0 };
    debug('refetch %s: no peer copy within %d ms, rendering here', primary, PEER_REFETCH_WAIT);
    return ctx.refetcher.run([target]);
  }

  /** A peer's copy of a page being refetched for the publication `group` (see #awaitPeerCopy). */
  #acceptRefetched(entry: Entry, primary: string, group: Publication): boolean {
    if (entry.storedAt < group.first) return false;
    const verdict = this.#ctx.epochs.check(entry);
    // Invalidated by something later than this publication: not the copy we wait for.
    if (verdict !== undefined && verdict.at > group.last) return false;
    const { cacheStatuses, maxEntrySize } = this.#ctx.accept;
    return acceptPeerEntry(entry, { primary, sent: {}, view: {}, authorized: false, cacheStatuses, maxEntrySize, isInvalidated: () => false, now: Date.now() });
  }
}
