/**
 * Options of the peer cluster (`options.peers`): the interface users read and its resolver.
 * The defaults live in the one frozen `DEFAULTS` of `../options/defaults.ts` (`DEFAULTS.peers`).
 */
import type { Bytes, Count, Milliseconds } from '../options/units.js';
import { fail as failAt, integerOption, knownOptions, objectOption } from '../options/validate.js';
import type { MaybePromise } from '../stores/store.js';
import { resolveDiscovery, type PeersDiscovery, type ResolvedDiscovery } from './discovery-options.js';

/** A cluster's member list, or a function returning it (re-read every `refreshInterval`). */
export type PeerNodes = readonly string[] | (() => MaybePromise<readonly string[]>);

/** How a node picks the peers it asks on a local miss, and whether the one it asks may render. */
export type PeerStrategy = 'all' | 'owner' | 'owner-fetch';

/** Every accepted `peers.strategy`. */
export const PEER_STRATEGIES: readonly PeerStrategy[] = Object.freeze(['all', 'owner', 'owner-fetch']);

/** Shortest accepted `peers.secret`, in characters. */
export const MIN_SECRET_LENGTH = 16;

/**
 * Peer cluster (`options.peers`): on a local miss a node asks its peers for the entry before
 * rendering, so a page is rendered once per cluster instead of once per node. A peer answers
 * from its own stores (with `strategy: 'owner-fetch'` the key's owner may also render it, once
 * for everyone); it never asks its own peers, every call is authenticated with `secret`, and a
 * failing peer is skipped by a circuit breaker.
 * Leaving `nodes` empty disables lookups; the endpoint still answers when `secret` is set.
 */
export interface PeersOptions {
  /**
   * This node's base URL as the other nodes reach it (`http://10.0.0.5:3000`). It is skipped in
   * `nodes`, and rendezvous hashing (`strategy: 'owner'`) needs it to know when it owns a key.
   * Required when `nodes` is given.
   * @default undefined
   */
  self?: string | undefined;
  /**
   * Base URLs (`http:` or `https:`, no query) of the cluster's nodes; `self` may be listed and
   * is skipped. Or a function (sync or async) returning them, called at start and every
   * `refreshInterval` for changing membership; until it first answers, the cluster is empty.
   * Not with `discover` (one source of members).
   * @default []
   */
  nodes?: PeerNodes;
  /**
   * Find the members instead of listing them: `{ dns: 'web.shop.svc.cluster.local', port: 3000 }`
   * re-resolves a DNS name (a Kubernetes headless service; SRV records without `port`) every
   * `interval`; `{ redis: true }` takes them from heartbeats in the Redis store of
   * `options.stores`. `self` must be the URL the others find this node under. Not with `nodes`.
   * `undefined`: the members are `nodes`.
   * @default undefined
   */
  discover?: PeersDiscovery | undefined;
  /**
   * How often `nodes`, when it is a function, is called again, in ms.
   * @default 10000
   */
  refreshInterval?: Milliseconds;
  /**
   * Shared secret signing every peer request and reply (HMAC-SHA256). Required as soon as
   * there are nodes; at least 16 characters. Without it the peer endpoint is not served.
   * @default undefined
   */
  secret?: string | undefined;
  /**
   * Path prefix of the peer endpoint, answered by the cache's own middleware on the same
   * port (and by {@link StrataCache.peerHandler} on another one). Requests go to
   * `<path>/r?k=<key>` (responses); `<path>/<ns>` is reserved for other namespaces.
   * @default '/_stratacache/peer'
   */
  path?: string;
  /**
   * Longest wait in ms for a peer's answer to begin ("have it" / "don't have it": the reply's
   * status and headers), queueing included. A peer slower than this costs at most this long.
   * @default 50
   */
  queryTimeout?: Milliseconds;
  /**
   * Longest transfer in ms of a found entry's bytes, after its headers arrived.
   * @default 2000
   */
  fetchTimeout?: Milliseconds;
  /**
   * `'all'`: ask every peer at once and take the first usable answer (the others are
   * cancelled). `'owner'`: ask only the node that owns the key by rendezvous hashing (one
   * request per miss whatever the cluster size; none when this node owns it).
   * `'owner-fetch'`: ask only the owner, and the owner renders the page when it has no fresh
   * copy (joining its own requests' render of that key), so each page is rendered once for the
   * cluster whichever node the load balancer picks. The owner renders exactly the request the
   * key names (GET of the URL on its host, with only the headers its key and `Vary` use, never
   * Cookie or Authorization); a request carrying Cookie only looks the owner up (no render for
   * it), one carrying Authorization asks nobody. When the owner is down, slower than
   * `ownerTimeout`, breaker-open, or its answer is not storable (private, Set-Cookie, no-store,
   * an error status), this node renders the page itself.
   * @default 'all'
   */
  strategy?: PeerStrategy;
  /**
   * With `strategy: 'owner-fetch'`: longest wait in ms for the owner's answer to begin when it
   * may render the page (its render included), before this node renders it itself. It replaces
   * `queryTimeout` for those requests only; keep it above the origin's usual render time and
   * well under `options.originTimeout`. At least `queryTimeout`.
   * @default 5000
   */
  ownerTimeout?: Milliseconds;
  /**
   * Copy an entry found on a peer into the local stores. `false` keeps one copy per key in the
   * cluster (more usable space, but every later request for it asks the peer again).
   * @default true
   */
  updateLocalCache?: boolean;
  /**
   * Most peer requests in flight at once from this node (p-limit); more wait their turn within
   * `queryTimeout`.
   * @default 16
   */
  maxConcurrent?: Count;
  /**
   * Consecutive failures (error, timeout, bad reply) after which a peer's circuit breaker
   * opens and the peer is skipped.
   * @default 3
   */
  failureThreshold?: Count;
  /**
   * How long in ms an open breaker skips its peer before one probe request is let through;
   * the probe's success closes it, its failure opens it again for this long.
   * @default 5000
   */
  coolDown?: Milliseconds;
  /**
   * Largest peer reply accepted, in bytes (the encoded entry: metadata and body). A larger
   * reply is cut off and counted as a peer error. `undefined`: `options.maxEntrySize` plus
   * 256 KiB for the metadata.
   * @default undefined
   */
  maxEntrySize?: Bytes | undefined;
}

/** `options.peers` after validation. `enabled` is false when there is no secret (no endpoint, no lookups). */
export interface ResolvedPeersOptions {
  readonly enabled: boolean;
  readonly self: string | undefined;
  /** Normalised node URLs, or the membership function. */
  readonly nodes: readonly string[] | (() => MaybePromise<readonly string[]>);
  /** Where the members are found (then `nodes` is empty), or undefined. */
  readonly discover: ResolvedDiscovery | undefined;
  readonly refreshInterval: Milliseconds;
  readonly secret: string;
  readonly path: string;
  readonly queryTimeout: Milliseconds;
  readonly fetchTimeout: Milliseconds;
  readonly strategy: PeerStrategy;
  readonly ownerTimeout: Milliseconds;
  readonly updateLocalCache: boolean;
  readonly maxConcurrent: Count;
  readonly failureThreshold: Count;
  readonly coolDown: Milliseconds;
  readonly maxEntrySize: Bytes;
}

/** The defaults, as `DEFAULTS.peers` lists them: the resolved shape, with nothing set that needs the user. */
export type PeersDefaults = Omit<ResolvedPeersOptions, 'enabled' | 'self' | 'nodes' | 'discover' | 'secret' | 'maxEntrySize'> & {
  readonly self: undefined;
  readonly nodes: readonly string[];
  readonly discover: undefined;
  readonly secret: undefined;
  readonly maxEntrySize: undefined;
};

function fail(kind: typeof TypeError | typeof RangeError, field: string, expected: string, got: unknown): never {
  return failAt(kind, `peers.${field}`, expected, got);
}

/**
 * Normalises a node's base URL: `http:`/`https:` only, no query or fragment, no trailing slash.
 * Returns undefined when it is not such a URL.
 */
export function normalizeNodeUrl(value: unknown): string | undefined {
  if (typeof value !== 'string' || value === '') return undefined;
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    return undefined;
  }
  if ((u.protocol !== 'http:' && u.protocol !== 'https:') || u.search !== '' || u.hash !== '' || u.username !== '') return undefined;
  return `${u.protocol}//${u.host}${u.pathname.replace(/\/+$/, '')}`;
}

/**
 * Validates `options.peers`. `defaults` is `DEFAULTS.peers`; `maxEntrySize` is the top-level
 * option (the default reply bound is derived from it).
 * @throws TypeError or RangeError naming `options.peers.<field>` and the value it got.
 */
export function resolvePeersOptions(value: unknown, defaults: PeersDefaults, maxEntrySize: Bytes): ResolvedPeersOptions {
  objectOption('peers', value);
  // DEFAULTS.peers names every field (those that need the user as undefined).
  knownOptions('peers', value, defaults);
  const user = value as PeersOptions;
  const pick = <K extends keyof PeersDefaults>(k: K): unknown => (user[k] === undefined ? defaults[k] : user[k]);

  const rawNodes = pick('nodes');
  let nodes: ResolvedPeersOptions['nodes'];
  let hasNodes: boolean;
  if (typeof rawNodes === 'function') {
    nodes = rawNodes as () => MaybePromise<readonly string[]>;
    hasNodes = true;
  } else if (Array.isArray(rawNodes)) {
    nodes = rawNodes.map((n, i) => normalizeNodeUrl(n) ?? fail(TypeError, `nodes[${i}]`, 'an http(s) base URL', n));
    hasNodes = nodes.length > 0;
  } else fail(TypeError, 'nodes', 'an array of base URLs or a function', rawNodes);
  const discover = resolveDiscovery(user.discover);
  if (discover !== undefined && hasNodes) fail(TypeError, 'nodes', 'unset with options.peers.discover (one source of members)', rawNodes);
  const members = hasNodes ? 'options.peers.nodes' : 'options.peers.discover';
  hasNodes ||= discover !== undefined;

  const rawSelf = pick('self');
  let self: string | undefined;
  if (rawSelf !== undefined) self = normalizeNodeUrl(rawSelf) ?? fail(TypeError, 'self', "this node's http(s) base URL", rawSelf);
  if (hasNodes && self === undefined) fail(TypeError, 'self', `this node's base URL (required with ${members})`, rawSelf);

  const secret = pick('secret');
  if (secret !== undefined && typeof secret !== 'string') fail(TypeError, 'secret', 'a string', secret);
  if (hasNodes && secret === undefined) fail(TypeError, 'secret', `a shared secret (required with ${members})`, secret);
  if (typeof secret === 'string' && secret.length < MIN_SECRET_LENGTH) {
    throw new RangeError(`expected options.peers.secret to be at least ${MIN_SECRET_LENGTH} characters, got ${secret.length}`);
  }

  const path = pick('path');
  if (typeof path !== 'string' || !/^\/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*[^/]$/.test(path)) {
    fail(TypeError, 'path', "a path starting with '/' and not ending with '/'", path);
  }
  const strategy = pick('strategy');
  if (!PEER_STRATEGIES.includes(strategy as PeerStrategy)) fail(TypeError, 'strategy', "'all', 'owner' or 'owner-fetch'", strategy);
  const updateLocalCache = pick('updateLocalCache');
  if (typeof updateLocalCache !== 'boolean') fail(TypeError, 'updateLocalCache', 'a boolean', updateLocalCache);
  const rawMax = pick('maxEntrySize');
  const replyMax = rawMax === undefined ? maxEntrySize + 256 * 1024 : integerOption('peers.maxEntrySize', rawMax, 64);

  const queryTimeout = integerOption('peers.queryTimeout', pick('queryTimeout'), 1);
  const ownerTimeout = integerOption('peers.ownerTimeout', pick('ownerTimeout'), 1);
  if (ownerTimeout < queryTimeout) fail(RangeError, 'ownerTimeout', `at least peers.queryTimeout (${queryTimeout} ms)`, ownerTimeout);

  return Object.freeze({
    enabled: typeof secret === 'string',
    self,
    nodes,
    discover,
    refreshInterval: integerOption('peers.refreshInterval', pick('refreshInterval'), 100),
    secret: secret ?? '',
    path,
    queryTimeout,
    fetchTimeout: integerOption('peers.fetchTimeout', pick('fetchTimeout'), 1),
    strategy: strategy as PeerStrategy,
    ownerTimeout,
    updateLocalCache,
    maxConcurrent: integerOption('peers.maxConcurrent', pick('maxConcurrent'), 1, 1024),
    failureThreshold: integerOption('peers.failureThreshold', pick('failureThreshold'), 1),
    coolDown: integerOption('peers.coolDown', pick('coolDown'), 0),
    maxEntrySize: replyMax,
  });
}
