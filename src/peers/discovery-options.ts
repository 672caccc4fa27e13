/**
 * Options of membership discovery (`options.peers.discover`): the cluster's nodes taken from a DNS
 * name re-resolved on an interval (a Kubernetes headless service), or from heartbeats the nodes
 * write to the shared Redis tier. The interfaces users read, their frozen defaults
 * ({@link DISCOVERY_DEFAULTS}) and the resolver that validates them once, at construction.
 */
import { isIP } from 'node:net';
import type { Milliseconds } from '../options/units.js';
import { fail, integerOption, knownOptions, objectOption } from '../options/validate.js';

/**
 * Nodes from DNS (`peers.discover: { dns: 'web.shop.svc.cluster.local', port: 3000 }`): the name is
 * resolved at start and every `interval`; each address becomes a node `http://<address>:<port>`.
 */
export interface DnsDiscoveryOptions {
  /**
   * The DNS name whose records list the nodes: with `port`, its A and AAAA records (a Kubernetes
   * headless service: one address per ready pod); without `port`, its SRV records
   * (`_http._tcp.web.shop.svc.cluster.local`), each giving a port and a target resolved to its
   * addresses. Required.
   * @default undefined (required)
   */
  dns: string;
  /**
   * Port of every node when A/AAAA records are used. `undefined`: the SRV records give the ports.
   * @default undefined
   */
  port?: number | undefined;
  /**
   * Scheme of the node URLs built from the records.
   * @default 'http'
   */
  protocol?: 'http' | 'https';
  /**
   * How often the name is resolved again, in ms. A node that appears in DNS is a peer within one
   * interval; one that disappears is gone within one interval.
   * @default 5000
   */
  interval?: Milliseconds;
  /**
   * DNS servers to ask (`['10.96.0.10', '127.0.0.1:5353', '[::1]:53']`), in order. `undefined`:
   * the system's resolvers (`/etc/resolv.conf`).
   * @default undefined
   */
  servers?: readonly string[] | undefined;
  /**
   * Longest wait in ms for one DNS query (per try; two tries). A resolution that fails or times
   * out keeps the previous members.
   * @default 2000
   */
  timeout?: Milliseconds;
}

/**
 * Nodes from heartbeats in the shared Redis tier (`peers.discover: { redis: true }`, with a
 * `redisStore` in `options.stores`): every `interval` each node announces its `peers.self` for
 * `ttl` ms and reads who else is announced. A node that stops heartbeating is dropped once its
 * `ttl` ran out (the others notice within one more `interval`); `cache.close()` removes the node
 * at once. Redis down or slow keeps the last known members.
 */
export interface RedisDiscoveryOptions {
  /**
   * Use the heartbeats of the Redis store in `options.stores`. Required (`true`).
   * @default undefined (required)
   */
  redis: true;
  /**
   * How often this node announces itself and reads the members, in ms.
   * @default 2000
   */
  interval?: Milliseconds;
  /**
   * How long in ms an announcement counts: a node not heard from for this long is no longer a
   * member. At least twice `interval`, so one late heartbeat does not drop a live node.
   * @default 6000
   */
  ttl?: Milliseconds;
}

/** Where the cluster finds its members (`options.peers.discover`). */
export type PeersDiscovery = DnsDiscoveryOptions | RedisDiscoveryOptions;

/** `options.peers.discover` after validation. */
export type ResolvedDiscovery =
  | {
      readonly kind: 'dns';
      readonly dns: string;
      readonly port: number | undefined;
      readonly protocol: 'http' | 'https';
      readonly interval: Milliseconds;
      readonly servers: readonly string[] | undefined;
      readonly timeout: Milliseconds;
    }
  | { readonly kind: 'redis'; readonly interval: Milliseconds; readonly ttl: Milliseconds };

/** Defaults of {@link DnsDiscoveryOptions} and {@link RedisDiscoveryOptions} (frozen). */
export const DISCOVERY_DEFAULTS = Object.freeze({
  dns: Object.freeze({ dns: undefined, port: undefined, protocol: 'http', interval: 5_000, servers: undefined, timeout: 2_000 }),
  redis: Object.freeze({ redis: undefined, interval: 2_000, ttl: 6_000 }),
});

/** A DNS host name: dot-separated labels of letters, digits, `-` and `_` (SRV names), 253 characters at most. */
const HOST_NAME = /^(?=.{1,253}\.?$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)*\.?$/;

/** True for `address`, `address:port` (IPv4) or `[address]:port` (IPv6): what `Resolver.setServers` takes. */
export function isDnsServer(value: unknown): boolean {
  if (typeof value !== 'string') return false;
  if (isIP(value) !== 0) return true;
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(value);
  if (m === null || Number(m[3]) < 1 || Number(m[3]) > 65535) return false;
  return m[1] !== undefined ? isIP(m[1]) === 6 : isIP(m[2]!) === 4;
}

/**
 * Validates `options.peers.discover` (undefined: no discovery).
 * @throws TypeError or RangeError naming `options.peers.discover.<field>` and the value it got.
 */
export function resolveDiscovery(value: unknown): ResolvedDiscovery | undefined {
  if (value === undefined) return undefined;
  const at = 'peers.discover';
  objectOption(at, value, "an object: { dns: 'name', port } or { redis: true }");
  const given = value as Record<string, unknown>;
  if ('dns' in given === 'redis' in given) fail(TypeError, at, "one of { dns: 'name', ... } and { redis: true, ... }", value);
  if ('redis' in given) {
    const d = DISCOVERY_DEFAULTS.redis;
    knownOptions(at, given, d);
    if (given.redis !== true) fail(TypeError, `${at}.redis`, 'true', given.redis);
    const interval = integerOption(`${at}.interval`, given.interval ?? d.interval, 10);
    const ttl = integerOption(`${at}.ttl`, given.ttl ?? d.ttl, 20);
    if (ttl < 2 * interval) fail(RangeError, `${at}.ttl`, `at least twice options.peers.discover.interval (${2 * interval})`, ttl);
    return Object.freeze({ kind: 'redis', interval, ttl });
  }
  const d = DISCOVERY_DEFAULTS.dns;
  knownOptions(at, given, d);
  const dns = given.dns;
  if (typeof dns !== 'string' || !HOST_NAME.test(dns)) fail(TypeError, `${at}.dns`, 'a DNS name', dns);
  const port = given.port === undefined ? undefined : integerOption(`${at}.port`, given.port, 1, 65535);
  const protocol = given.protocol ?? d.protocol;
  if (protocol !== 'http' && protocol !== 'https') fail(TypeError, `${at}.protocol`, "'http' or 'https'", protocol);
  let servers: string[] | undefined;
  if (given.servers !== undefined) {
    if (!Array.isArray(given.servers) || given.servers.length === 0) fail(TypeError, `${at}.servers`, 'a non-empty array of DNS server addresses', given.servers);
    servers = given.servers.map((s: unknown, i) => (isDnsServer(s) ? (s as string) : fail(TypeError, `${at}.servers[${i}]`, "an IP address, 'a.b.c.d:port' or '[v6]:port'", s)));
  }
  return Object.freeze({
    kind: 'dns',
    dns,
    port,
    protocol,
    interval: integerOption(`${at}.interval`, given.interval ?? d.interval, 10),
    servers: servers === undefined ? undefined : Object.freeze(servers),
    timeout: integerOption(`${at}.timeout`, given.timeout ?? d.timeout, 1, 60_000),
  });
}
