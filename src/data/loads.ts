/**
 * How the data cache loads a key: single flight per key, the flight leader asking the lower
 * tiers and the cluster before loading here, background refreshes (tracked so close() can wait
 * for them), and peers' lookups of this node's data.
 */
import createDebug from 'debug';
import type { ResponseServices } from '../seam.js';
import type { Entry } from '../entry.js';
import type { Reporter } from '../report.js';
import type { ResolvedOptions } from '../options/types.js';
import { peerCounters, type PeerCounters } from '../peers/cluster.js';
import type { LookupQuery } from '../peers/protocol.js';
import { deletionNames, URLKEY, VALUE } from './keys.js';
import type { DataFlight } from './flights.js';
import { DATA_NAMESPACE, judgePeerData } from './peers.js';
import { digest } from './scope.js';
import { detachedScope, type DataStorage } from './storage.js';
import type { Counters, Outcome } from './types.js';

const debug = createDebug('stratacache:data');

/** Single flight, peer and lower-tier lookups, and background refreshes of data keys. */
export class DataLoads {
  readonly #engine: ResponseServices;
  readonly #storage: DataStorage;
  readonly #peerOptions: ResolvedOptions['peers'];
  readonly #cacheStatuses: ReadonlySet<number>;
  readonly #maxEntrySize: number;
  readonly #counters: Counters;
  readonly #report: Reporter;
  readonly peerCounters: PeerCounters = peerCounters();

  constructor(engine: ResponseServices, o: ResolvedOptions, storage: DataStorage, at: { counters: Counters; report: Reporter }) {
    this.#engine = engine;
    this.#storage = storage;
    this.#peerOptions = o.peers;
    this.#cacheStatuses = o.cacheStatuses;
    this.#maxEntrySize = o.data.maxEntrySize;
    this.#counters = at.counters;
    this.#report = at.report;
  }

  /** Whether a load of `k` is in flight. */
  loading(k: string): boolean {
    return this.#storage.flights.has(k);
  }

  /** Settles once every background refresh did, or after `waitMs`. */
  async settled(waitMs: number): Promise<void> {
    await this.#report.settled(waitMs);
  }

  /**
   * The flight leader of a foreground load: asks the cluster first (groupcache's load: a peer
   * that has it, else a local load), then loads here on a miss, an error or a timeout. Event
   * trace: A leads k -> callers C1..Cn join A's flight -> A asks peers (namespace `d`) -> hit:
   * the flight resolves with the peer's entry (PEER, or STALE inside its stale-while-revalidate
   * window) / miss, error, timeout, refusal: the loader runs (or the request is made) once.
   * Background refreshes never come here: they exist to get the source's current value.
   */
  async lead(k: string, flight: DataFlight, load: (flight: DataFlight) => Promise<Outcome>, shareable: boolean): Promise<Outcome> {
    const peers = this.#engine.peers;
    if (this.#storage.lower.empty && (peers === undefined || !shareable)) return load(flight);
    const value = k.startsWith(VALUE);
    const url = k.slice(value ? VALUE.length : URLKEY.length);
    const names = deletionNames(k);
    const cacheStatuses = this.#cacheStatuses;
    // A copy from a lower tier or a peer is judged by the same local rules.
    const acceptable = (entry: Entry): boolean =>
      judgePeerData(entry, {
        key: k,
        url,
        now: Date.now(),
        maxEntrySize: this.#maxEntrySize,
        cacheStatuses,
        value,
        // Read at judging time: a delete made while the lookup was out still refuses the copy.
        deletedAt: this.#storage.deletions.newest(names),
        isInvalidated: (e) => this.#engine.isInvalidated(e),
        decodes: (e) => decodes(() => this.#storage.value(e, url)),
      }) !== undefined;
    if (!this.#storage.lower.empty) {
      const found = await this.#storage.lower.find(k, acceptable);
      if (found !== undefined) {
        if (flight.invalidated === undefined) this.#storage.put(k, found, detachedScope(), false);
        const fresh = Date.now() < found.staleAt;
        debug('lower tier %s: %s', fresh ? 'hit' : 'stale hit', k);
        return { ok: true, res: { status: found.status, headers: found.headers, body: found.body, cache: fresh ? 'HIT' : 'STALE', entry: found } };
      }
    }
    if (peers === undefined || !shareable) return load(flight);
    const hit = await peers.find({ ns: DATA_NAMESPACE, key: k, headers: {}, freshAt: undefined }, acceptable, this.peerCounters);
    if (hit === undefined) return load(flight);
    const { entry } = hit;
    if (flight.invalidated !== undefined) debug('not stored: %s invalidated during the peer lookup', k);
    else if (this.#peerOptions.updateLocalCache) this.#storage.put(k, entry, detachedScope());
    else this.#storage.peerDigests.set(k, digest(entry.body));
    const fresh = Date.now() < entry.staleAt;
    debug('peer %s: %s %s', fresh ? 'hit' : 'stale hit', k, hit.peer);
    return { ok: true, res: { status: entry.status, headers: entry.headers, body: entry.body, cache: fresh ? 'PEER' : 'STALE', entry } };
  }

  /** A caller got a peer's stale copy: counted, and refreshed once in the background (here, not from peers). */
  servedStalePeerCopy(k: string, tags: readonly string[], load: (flight: DataFlight) => Promise<Outcome>): void {
    this.#counters.stale++;
    if (!this.loading(k)) this.backgroundLoad(k, tags, load);
  }

  /**
   * A peer's lookup of a data key: the data memory tier only (never a loader, never a request,
   * never this node's peers). A value this node would not serve itself, stored before an
   * invalidation of its tags, is not shipped.
   */
  answerPeer(query: LookupQuery): Entry | undefined {
    if (!query.key.startsWith(VALUE) && !query.key.startsWith(URLKEY)) return undefined;
    const entry = this.#storage.memory.get(query.key);
    if (entry === undefined || (entry.tags.length > 0 && this.#engine.isInvalidated(entry))) return undefined;
    return entry;
  }

  /**
   * Joins the load of `k` in flight, or leads a new one (asking lower tiers and peers first, see
   * {@link lead}). `tags` are the tags its value will carry (for invalidations while it runs).
   */
  join(k: string, tags: readonly string[], load: (flight: DataFlight) => Promise<Outcome>, shareable: boolean): DataFlight {
    const { flight, joined } = this.#storage.flights.run(k, tags, (f) => this.lead(k, f, load, shareable), failed);
    if (joined) this.#counters.loadsDeduped++;
    return flight;
  }

  /**
   * The render or load in progress (if any) read `k` through `flight`: recorded once the flight
   * settled (a read recorded before would be tainted by the flight's own store). A flight an
   * invalidation overtook taints it: what it stores is stale at birth.
   */
  readThrough(k: string, flight: DataFlight): void {
    this.#storage.read(k);
    if (flight.invalidated !== undefined) this.#storage.taint();
  }

  /** One background refresh of `k` (stale-while-revalidate, early refresh); its failure is counted, never thrown. */
  backgroundLoad(k: string, tags: readonly string[], load: (flight: DataFlight) => Promise<Outcome>): void {
    // Outside the caller's scope: the refresh is not part of the render that triggered it.
    const p = this.#storage.als.exit(() => this.#storage.flights.run(k, tags, load, failed).flight.promise);
    this.#report.track(p);
  }
}

/** The outcome of a load that threw. */
function failed(error: unknown): Outcome {
  return { ok: false, error };
}

/** True when `decode` does not throw. */
function decodes(decode: () => unknown): boolean {
  try {
    decode();
    return true;
  } catch {
    return false;
  }
}
