/**
 * A discrete-event model of a stratacache cluster (issue 20): N nodes behind a load balancer,
 * each with a memory LRU and single flight per key, optionally peers (src/peers/cluster.ts) and a
 * shared Redis tier (src/stores/redis.ts), fed a seeded Zipf workload. It counts what the code
 * does per request (origin renders, peer lookups, Redis commands and bytes, invalidation
 * messages) and the latency each step adds, with per-hop latencies taken from measurements.
 *
 * What each strategy does on a local miss, as the code does it (the leader of the node's single
 * flight; requests for the same key on the same node meanwhile wait for it):
 * - `none`: render.
 * - `all`: ask every live peer, `maxConcurrent` (16) at a time; a peer answers from its tiers only
 *   (never renders, never waits for its own flights); the first hit wins, is copied into every
 *   local tier, and the asks still queued are not sent; all miss: render.
 * - `owner`: ask only the key's rendezvous owner (none when this node owns it, or when the owner's
 *   breaker is open: it is down); hit: copy; miss: render.
 * - `owner-fetch`: ask only the owner, which answers from its tiers or renders
 *   itself, coalesced with its own flight for the key (so one render per key per cluster); the
 *   asker copies the answer into every tier. Owner down: the asker renders.
 * - `redis` (a Redis tier, no peers): Redis GET (hit: promoted to memory); miss: take the render
 *   lease (`SET NX PX`); taken: render, `SET` the entry, release (`EVAL`); held by another node:
 *   poll (GET entry, GET lease; 20 ms doubling to 200 ms) until the entry comes, the lease goes or
 *   `leaseWait` passes, then render.
 * - `redis+owner-fetch`: Redis GET first; miss: owner-fetch as above (the owner reads Redis, then
 *   renders and writes it). With peers configured the engine leads through the peers, not the
 *   render lease, so no lease commands.
 *
 * Entry times are absolute, as in the code: a copy (peer, Redis) keeps the expiry of the render it
 * came from. A flush removes the URL everywhere; its messages are the peers' propagation (one
 * signed POST per live peer) and Redis's stream (one XADD, and one XREAD reply per node, each
 * re-issued). Not modelled: stale-while-revalidate and grace (an expired entry is a miss), Vary,
 * request bodies, network queueing, CPU contention, breaker timing (a down node is skipped at once,
 * as it is once its breaker opened).
 */
import { mix, seeded, zipf } from './random.js';

/** What a node does on a local miss (see the module comment). */
export type Strategy = 'none' | 'all' | 'owner' | 'owner-fetch' | 'redis' | 'redis+owner-fetch';
/** How the load balancer spreads requests: in turn, or by a hash of the URL (its own, not the ring's). */
export type Balancer = 'round-robin' | 'key-hash';

/** Per-step latencies in ms (p50s of measurements; see docs/cluster.md). */
export interface Latencies {
  /** A local memory hit, end to end as the client sees it. */
  localHit: number;
  /** What a peer lookup adds to a hit (request and signed reply over the network, both ways). */
  peerHop: number;
  /** One Redis command's round trip (a GET of an entry included). */
  redisCommand: number;
  /** One origin render. */
  render: number;
}

/** One simulated run. */
export interface SimConfig {
  nodes: number;
  strategy: Strategy;
  balancer: Balancer;
  /** Distinct URLs (Zipf ranks 0..urls-1). */
  urls: number;
  /** Zipf exponent. */
  zipf: number;
  /** Hit window in ms: an entry is fresh for this long after its render ends. */
  ttl: number;
  /** Memory tier capacity per node, in entries (the byte bound divided by the entry size). */
  memoryEntries: number;
  /** Bytes of one encoded entry (what a peer reply, a Redis GET hit or SET carries). */
  entryBytes: number;
  /** Client requests in the run. */
  requests: number;
  /**
   * Open loop: `rate` client requests per second for the whole cluster, Poisson arrivals. Closed
   * loop: `concurrency` clients, each sending its next request when the previous one ended.
   */
  arrivals: { rate: number } | { concurrency: number };
  /** Figures count from this simulated time on (ms): the warm-up before it is left out. */
  measureFrom: number;
  /** Flushes per second (one URL each, drawn from the same Zipf). 0: none. */
  flushRate: number;
  /** Nodes down (the last ones): they get no traffic and are never asked (breaker open). */
  down: number;
  latency: Latencies;
  seed: number;
  /** An explicit workload instead of Zipf and the balancer: request i is URL `url(i)` on node `node(i)`. */
  sequence?: { url: (i: number) => number; node: (i: number) => number };
  /** Render lease: poll start and cap, and the longest wait (ms), as in src/stores/redis-lease.ts. */
  lease?: { firstPoll: number; maxPoll: number; wait: number };
  /** The asker writes an owner's answer into Redis too (the engine stores a peer hit in every tier). @default true */
  askerWritesShared?: boolean;
  /** `peers.maxConcurrent`: most peer asks in flight from one node. @default 16 */
  maxConcurrent?: number;
}

/** Bytes of a Redis command or reply without an entry in it (key, framing). */
const COMMAND_BYTES = 64;
/** Bytes of an invalidation record in the stream or in a propagation call. */
const RECORD_BYTES = 200;
/** `peers.queryTimeout` default: asks of strategy 'all' still queued then are dropped. */
const QUERY_TIMEOUT = 50;
/** How long one idle XREAD blocks (src/stores/redis-sync.ts). */
const XREAD_BLOCK = 2000;

/** What a run measured (from `measureFrom` on). */
export interface SimResult {
  config: SimConfig;
  /** Simulated ms measured. */
  measuredMs: number;
  requests: number;
  /** Distinct URLs requested while measuring. */
  distinctUrls: number;
  renders: number;
  /**
   * Renders one cache with unbounded memory in front of the origin would do for the same
   * requests (one per URL per hit window, flushes included): the least any topology can do.
   */
  minimumRenders: number;
  localHits: number;
  /** Requests that waited for a flight already running on their node. */
  coalesced: number;
  /** Local misses that led a flight (each is one of: Redis hit, peer hit, render, lease wait). */
  leaders: number;
  /** Leaders that asked at least one peer. */
  askingLeaders: number;
  peerRequests: number;
  peerHits: number;
  redisCommands: number;
  redisBytes: number;
  flushes: number;
  invalidationMessages: number;
  /**
   * Renders of a URL that started while another render of it ran, or while an earlier render's
   * entry was still fresh (no flush in between): 0 means at most one render per URL per hit
   * window, what owner-fetch should give when no node fails and memory holds every URL.
   */
  rendersWithinWindow: number;
  /** Latency added over a local hit, ms: mean, p50, p99 over measured requests. */
  added: { mean: number; p50: number; p99: number };
}

interface Flight {
  waiters: Array<(t: number, expires: number | undefined) => void>;
}

interface Node {
  /** URL -> absolute expiry, in LRU order (oldest first). */
  mem: Map<number, number>;
  flights: Map<number, Flight>;
}

/** A binary min-heap of timed callbacks (ties in scheduling order). */
class Events {
  #t: number[] = [];
  #seq: number[] = [];
  #fn: Array<() => void> = [];
  #next = 0;

  get size(): number {
    return this.#t.length;
  }

  peek(): number {
    return this.#t[0] ?? Infinity;
  }

  push(t: number, fn: () => void): void {
    const ts = this.#t;
    const seq = this.#seq;
    const fns = this.#fn;
    let i = ts.length;
    const s = this.#next++;
    ts.push(t);
    seq.push(s);
    fns.push(fn);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (ts[p]! < t || (ts[p] === t && seq[p]! < s)) break;
      ts[i] = ts[p]!;
      seq[i] = seq[p]!;
      fns[i] = fns[p]!;
      i = p;
    }
    ts[i] = t;
    seq[i] = s;
    fns[i] = fn;
  }

  /** Removes the earliest event and returns its time and callback. */
  pop(): [number, () => void] {
    const ts = this.#t;
    const seq = this.#seq;
    const fns = this.#fn;
    const top: [number, () => void] = [ts[0]!, fns[0]!];
    const t = ts.pop()!;
    const s = seq.pop()!;
    const fn = fns.pop()!;
    const n = ts.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const c = r < n && (ts[r]! < ts[l]! || (ts[r] === ts[l] && seq[r]! < seq[l]!)) ? r : l;
        if (ts[c]! > t || (ts[c] === t && seq[c]! > s)) break;
        ts[i] = ts[c]!;
        seq[i] = seq[c]!;
        fns[i] = fns[c]!;
        i = c;
      }
      ts[i] = t;
      seq[i] = s;
      fns[i] = fn;
    }
    return top;
  }
}

/** The rendezvous owner of `url` among `nodes` nodes: the highest weight, ties to the lower index (src/peers/ring.ts). */
export function rendezvousOwner(url: number, nodes: number, salt: number): number {
  let best = 0;
  let weight = -1;
  for (let n = 0; n < nodes; n++) {
    const w = mix(mix(n, salt), url);
    if (w > weight) {
      best = n;
      weight = w;
    }
  }
  return best;
}

/** Runs one configuration and returns its figures. */
export function simulate(config: SimConfig): SimResult {
  const { nodes: N, strategy, ttl, latency, memoryEntries } = config;
  const lease = config.lease ?? { firstPoll: 20, maxPoll: 200, wait: 10_000 };
  const askerWritesShared = config.askerWritesShared ?? true;
  const maxConcurrent = config.maxConcurrent ?? 16;
  const live = N - config.down;
  if (!(live >= 1 && config.down >= 0)) throw new RangeError(`expected at least one live node, got ${N} nodes and ${config.down} down`);
  const hasRedis = strategy === 'redis' || strategy === 'redis+owner-fetch';
  const hasPeers = strategy === 'all' || strategy === 'owner' || strategy === 'owner-fetch' || strategy === 'redis+owner-fetch';
  const isDown = (n: number): boolean => n >= live;

  const random = seeded(config.seed);
  const flushRandom = seeded(mix(config.seed, 0xf1a5));
  const drawUrl = zipf(config.urls, config.zipf, random);
  const drawFlushed = zipf(config.urls, config.zipf, flushRandom);
  const ringSalt = mix(config.seed, 0x7269);
  const balancerSalt = mix(config.seed, 0x6c62);
  const owners = new Int32Array(config.urls).fill(-1);
  const ownerOf = (url: number): number => {
    let o = owners[url]!;
    if (o < 0) owners[url] = o = rendezvousOwner(url, N, ringSalt);
    return o;
  };

  const nodes: Node[] = Array.from({ length: N }, () => ({ mem: new Map(), flights: new Map() }));
  const redis = new Map<number, number>();
  const leases = new Map<number, { holder: number; expires: number }>();
  const lastExpiry = new Float64Array(config.urls);
  const rendering = new Uint16Array(config.urls);
  const idealExpiry = new Float64Array(config.urls);
  const events = new Events();
  let now = 0;
  let measuring = config.measureFrom <= 0;
  const r: Omit<SimResult, 'config' | 'measuredMs' | 'distinctUrls' | 'added'> = {
    requests: 0,
    renders: 0,
    minimumRenders: 0,
    localHits: 0,
    coalesced: 0,
    leaders: 0,
    askingLeaders: 0,
    peerRequests: 0,
    peerHits: 0,
    redisCommands: 0,
    redisBytes: 0,
    flushes: 0,
    invalidationMessages: 0,
    rendersWithinWindow: 0,
  };
  const added = new Float64Array(config.requests);
  const seen = new Uint8Array(config.urls);
  let distinct = 0;

  const at = (t: number, fn: () => void): void => events.push(t, fn);
  const command = (bytes: number): void => {
    if (!measuring) return;
    r.redisCommands++;
    r.redisBytes += bytes;
  };

  /** A fresh entry in a node's memory (an expired one is dropped); touches the LRU. */
  const memGet = (node: Node, url: number, t: number): number | undefined => {
    const expires = node.mem.get(url);
    if (expires === undefined) return undefined;
    node.mem.delete(url);
    if (expires <= t) return undefined;
    node.mem.set(url, expires);
    return expires;
  };
  const memSet = (node: Node, url: number, expires: number): void => {
    node.mem.delete(url);
    node.mem.set(url, expires);
    if (node.mem.size > memoryEntries) node.mem.delete(node.mem.keys().next().value!);
  };
  const redisGet = (url: number, t: number): number | undefined => {
    const expires = redis.get(url);
    const fresh = expires !== undefined && expires > t ? expires : undefined;
    command(COMMAND_BYTES + (fresh === undefined ? 0 : config.entryBytes));
    return fresh;
  };
  const redisSet = (url: number, expires: number): void => {
    command(COMMAND_BYTES + config.entryBytes);
    redis.set(url, expires);
  };
  /** A node's tiers as the peer endpoint reads them (memory, then Redis): never renders. */
  const tiersFind = (node: Node, url: number, t: number): number | undefined => memGet(node, url, t) ?? (hasRedis ? redisGet(url, t) : undefined);

  const settle = (n: number, url: number, flight: Flight, t: number, expires: number | undefined, store: 'memory' | 'all' | 'none'): void => {
    const node = nodes[n]!;
    node.flights.delete(url);
    if (expires !== undefined && store !== 'none') {
      memSet(node, url, expires);
      if (store === 'all' && hasRedis) redisSet(url, expires);
    }
    for (const waiter of flight.waiters) waiter(t, expires);
  };

  /** Renders `url` on node `n`, stores it in every tier, then calls `then` (at the render's end). */
  const render = (n: number, url: number, t: number, then: (t: number, expires: number) => void): void => {
    if (measuring) {
      r.renders++;
      if (t < lastExpiry[url]! || rendering[url]! > 0) r.rendersWithinWindow++;
    }
    rendering[url] = rendering[url]! + 1;
    const end = t + latency.render;
    at(end, () => {
      rendering[url] = rendering[url]! - 1;
      const expires = end + ttl;
      lastExpiry[url] = Math.max(lastExpiry[url]!, expires);
      memSet(nodes[n]!, url, expires);
      if (hasRedis) redisSet(url, expires);
      then(end, expires);
    });
  };
  const renderAndSettle = (n: number, url: number, flight: Flight, t: number): void =>
    render(n, url, t, (end, expires) => settle(n, url, flight, end, expires, 'none'));

  /** Starts node `n`'s flight for `url` (its waiters get the outcome); `lead` decides how it ends. */
  const startFlight = (n: number, url: number): Flight => {
    const flight: Flight = { waiters: [] };
    nodes[n]!.flights.set(url, flight);
    return flight;
  };

  /** The owner's side of owner-fetch: its tiers, its running flight, or a render of its own. */
  const ownerServe = (o: number, url: number, t: number, reply: (t: number, expires: number | undefined) => void): void => {
    const node = nodes[o]!;
    const hit = memGet(node, url, t);
    if (hit !== undefined) return reply(t, hit);
    const running = node.flights.get(url);
    if (running !== undefined) {
      running.waiters.push(reply);
      return;
    }
    const flight = startFlight(o, url);
    flight.waiters.push(reply);
    if (hasRedis) {
      const found = redisGet(url, t);
      at(t + latency.redisCommand, () => (found !== undefined ? settle(o, url, flight, now, found, 'memory') : renderAndSettle(o, url, flight, now)));
    } else renderAndSettle(o, url, flight, t);
  };

  /**
   * Strategy 'all': every live peer, at most `maxConcurrent` asks in flight (p-limit), so they go
   * out in waves of that many; a hit ends the lookup and the asks still queued are never sent;
   * asks still queued at `queryTimeout` are dropped. The j-th peer of node n is j, or j + 1 from n on.
   */
  const askAll = (n: number, url: number, flight: Flight, t: number): void => {
    const half = latency.peerHop / 2;
    const peers = live - 1;
    if (peers === 0) return renderAndSettle(n, url, flight, t);
    if (measuring) r.askingLeaders++;
    const wave = (from: number, start: number): void => {
      const to = Math.min(peers, from + maxConcurrent);
      if (measuring) r.peerRequests += to - from;
      at(start + half, () => {
        let found: number | undefined;
        for (let j = from; j < to; j++) {
          const hit = tiersFind(nodes[j < n ? j : j + 1]!, url, now);
          if (found === undefined) found = hit;
        }
        at(now + half, () => {
          if (found !== undefined) {
            if (measuring) r.peerHits++;
            return settle(n, url, flight, now, found, 'all');
          }
          if (to < peers && now < t + QUERY_TIMEOUT) return wave(to, now);
          renderAndSettle(n, url, flight, now);
        });
      });
    };
    wave(0, t);
  };

  const askOwner = (n: number, url: number, flight: Flight, t: number, fetch: boolean): void => {
    const o = ownerOf(url);
    if (o === n || isDown(o)) return renderAndSettle(n, url, flight, t);
    if (measuring) {
      r.askingLeaders++;
      r.peerRequests++;
    }
    const half = latency.peerHop / 2;
    const answer = (t2: number, expires: number | undefined): void =>
      at(t2 + half, () => {
        if (expires === undefined) return renderAndSettle(n, url, flight, now);
        if (measuring) r.peerHits++;
        settle(n, url, flight, now, expires, askerWritesShared ? 'all' : 'memory');
      });
    at(t + half, () => {
      if (fetch) ownerServe(o, url, now, answer);
      else answer(now, tiersFind(nodes[o]!, url, now));
    });
  };

  /** Redis alone: the render lease, or polling for the holder's entry. */
  const leased = (n: number, url: number, flight: Flight, t: number): void => {
    command(COMMAND_BYTES); // SET lease NX PX
    const held = leases.get(url);
    if (held === undefined || held.expires <= t) {
      leases.set(url, { holder: n, expires: t + 15_000 });
      return at(t + latency.redisCommand, () =>
        render(n, url, now, (end, expires) => {
          settle(n, url, flight, end, expires, 'none');
          command(COMMAND_BYTES * 3); // EVAL compare-and-delete
          if (leases.get(url)?.holder === n) leases.delete(url);
        }),
      );
    }
    const deadline = t + latency.redisCommand + lease.wait;
    const poll = (delay: number): void =>
      at(now + delay, () => {
        const entry = redisGet(url, now);
        if (entry !== undefined) return at(now + latency.redisCommand, () => settle(n, url, flight, now, entry, 'memory'));
        command(COMMAND_BYTES); // GET lease
        if (!leases.has(url)) {
          const last = redisGet(url, now);
          return at(now + 3 * latency.redisCommand, () => (last !== undefined ? settle(n, url, flight, now, last, 'memory') : renderAndSettle(n, url, flight, now)));
        }
        at(now + 2 * latency.redisCommand, () => (now >= deadline ? renderAndSettle(n, url, flight, now) : poll(Math.min(delay * 2, lease.maxPoll))));
      });
    at(t + latency.redisCommand, () => poll(lease.firstPoll));
  };

  const lead = (n: number, url: number, t: number): Flight => {
    const flight = startFlight(n, url);
    if (measuring) r.leaders++;
    const afterRedis = (miss: (t: number) => void): void => {
      const found = redisGet(url, t);
      at(t + latency.redisCommand, () => (found !== undefined ? settle(n, url, flight, now, found, 'memory') : miss(now)));
    };
    switch (strategy) {
      case 'none':
        renderAndSettle(n, url, flight, t);
        break;
      case 'all':
        askAll(n, url, flight, t);
        break;
      case 'owner':
        askOwner(n, url, flight, t, false);
        break;
      case 'owner-fetch':
        askOwner(n, url, flight, t, true);
        break;
      case 'redis':
        afterRedis((t1) => leased(n, url, flight, t1));
        break;
      case 'redis+owner-fetch':
        afterRedis((t1) => askOwner(n, url, flight, t1, true));
        break;
    }
    return flight;
  };

  /** One client request for `url` on node `n` at time `t`; `done` gets the time it was answered. */
  const request = (n: number, url: number, t: number, done: (end: number) => void): void => {
    const node = nodes[n]!;
    if (memGet(node, url, t) !== undefined) {
      if (measuring) r.localHits++;
      return done(t);
    }
    const running = node.flights.get(url);
    if (running !== undefined) {
      if (measuring) r.coalesced++;
      running.waiters.push((end) => done(end));
      return;
    }
    lead(n, url, t).waiters.push((end) => done(end));
  };

  const flush = (url: number): void => {
    for (let n = 0; n < live; n++) nodes[n]!.mem.delete(url);
    redis.delete(url);
    lastExpiry[url] = 0;
    idealExpiry[url] = 0;
    if (!measuring) return;
    r.flushes++;
    if (hasPeers) r.invalidationMessages += live - 1; // one signed POST per live peer
    if (hasRedis) {
      r.invalidationMessages += 1 + live; // XADD, and each node's XREAD returns it
      command(RECORD_BYTES); // XADD
      for (let n = 0; n < live; n++) command(RECORD_BYTES); // XREAD reply, re-issued
    }
  };

  // The workload.
  let rr = 0;
  const pick = (i: number): [number, number] => {
    if (config.sequence !== undefined) return [config.sequence.node(i), config.sequence.url(i)];
    const url = drawUrl();
    const n = config.balancer === 'round-robin' ? rr++ % live : mix(url, balancerSalt) % live;
    return [n, url];
  };
  let issued = 0;
  const issue = (t: number, then?: (end: number) => void): void => {
    const i = issued++;
    const [n, url] = pick(i);
    if (t >= config.measureFrom) measuring = true;
    const counted = measuring;
    if (t >= idealExpiry[url]!) {
      idealExpiry[url] = t + latency.render + ttl;
      if (counted) r.minimumRenders++;
    }
    if (counted) {
      r.requests++;
      if (seen[url] === 0) {
        seen[url] = 1;
        distinct++;
      }
    }
    const slot = counted ? r.requests - 1 : -1;
    request(n, url, t, (end) => {
      if (slot >= 0) added[slot] = end - t;
      then?.(end);
    });
  };
  const runUntil = (t: number): void => {
    while (events.size > 0 && events.peek() <= t) {
      const [when, fn] = events.pop();
      now = when;
      if (when >= config.measureFrom) measuring = true;
      fn();
    }
    now = t;
  };

  let nextFlush = config.flushRate > 0 ? -Math.log(1 - flushRandom()) * (1000 / config.flushRate) : Infinity;
  const flushesUntil = (t: number): void => {
    while (nextFlush <= t) {
      runUntil(nextFlush);
      flush(drawFlushed());
      nextFlush += -Math.log(1 - flushRandom()) * (1000 / config.flushRate);
    }
  };

  let end = 0;
  if ('rate' in config.arrivals) {
    const gap = 1000 / config.arrivals.rate;
    let t = 0;
    for (let i = 0; i < config.requests; i++) {
      t += -Math.log(1 - random()) * gap;
      flushesUntil(t);
      runUntil(t);
      issue(t);
    }
    end = t;
    runUntil(Infinity);
  } else {
    const client = (end: number): void => {
      if (issued < config.requests) at(end, () => issue(now, client));
    };
    for (let c = 0; c < config.arrivals.concurrency && issued < config.requests; c++) issue(0, client);
    while (events.size > 0) {
      flushesUntil(events.peek());
      const [when, fn] = events.pop();
      now = when;
      if (when >= config.measureFrom) measuring = true;
      end = Math.max(end, when);
      fn();
    }
  }

  const measuredMs = Math.max(0, end - config.measureFrom);
  if (hasRedis) {
    // Each live node keeps one XREAD blocked; an idle one is re-issued every XREAD_BLOCK ms.
    const idle = Math.floor((measuredMs / XREAD_BLOCK) * live);
    r.redisCommands += idle;
    r.redisBytes += idle * COMMAND_BYTES;
  }
  const sample = added.subarray(0, r.requests).sort();
  const q = (p: number): number => (sample.length === 0 ? 0 : sample[Math.min(sample.length - 1, Math.floor(p * sample.length))]!);
  let sum = 0;
  for (const x of sample) sum += x;
  return {
    config,
    measuredMs,
    distinctUrls: distinct,
    ...r,
    added: { mean: sample.length === 0 ? 0 : sum / sample.length, p50: q(0.5), p99: q(0.99) },
  };
}
