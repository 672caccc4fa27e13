/**
 * Members from DNS (`peers.discover: { dns }`): the name's A and AAAA records with a fixed port,
 * or its SRV records (a port and a target per node, the target resolved to its addresses), as
 * node URLs `http://<address>:<port>`. Asks the configured servers through its own `Resolver`
 * (node:dns/promises), never the process-wide settings.
 *
 * An answer of "no such name" or "no records of this type" is an answer: no nodes there (a
 * headless service with no ready pod). Anything else (timeout, refused, server failure) rejects,
 * and the cluster keeps the members it had.
 */
import { Resolver } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { ResolvedDiscovery } from './discovery-options.js';
import { normalizeNodeUrl } from './options.js';

/** DNS error codes that mean "nothing there" rather than "could not ask". */
const EMPTY_ANSWERS = new Set(['ENODATA', 'ENOTFOUND']);

type DnsDiscovery = Extract<ResolvedDiscovery, { kind: 'dns' }>;

/** The records of one query, `[]` for an empty answer; rejects when the query failed. */
async function answer<T>(query: Promise<T[]>): Promise<T[]> {
  try {
    return await query;
  } catch (error) {
    if (EMPTY_ANSWERS.has((error as NodeJS.ErrnoException).code ?? '')) return [];
    throw error;
  }
}

/** Resolves the discovery name into node URLs. */
export class DnsMembers {
  readonly #options: DnsDiscovery;
  readonly #resolver: Resolver;

  constructor(options: DnsDiscovery) {
    this.#options = options;
    this.#resolver = new Resolver({ timeout: options.timeout, tries: 2 });
    if (options.servers !== undefined) this.#resolver.setServers([...options.servers]);
  }

  /** Node URLs, sorted, without duplicates. Rejects when a query failed. */
  async read(): Promise<string[]> {
    const { dns, port } = this.#options;
    const targets = port === undefined ? (await answer(this.#resolver.resolveSrv(dns))).map((r) => ({ host: r.name, port: r.port })) : [{ host: dns, port }];
    const urls = new Set<string>();
    await Promise.all(
      targets.map(async (target) => {
        for (const address of await this.#addresses(target.host)) {
          const url = normalizeNodeUrl(`${this.#options.protocol}://${isIP(address) === 6 ? `[${address}]` : address}:${target.port}`);
          if (url !== undefined) urls.add(url);
        }
      }),
    );
    return [...urls].sort();
  }

  /** The IPv4 and IPv6 addresses of `host` (itself when it is an address). */
  async #addresses(host: string): Promise<string[]> {
    if (isIP(host) !== 0) return [host];
    const [v4, v6] = await Promise.all([answer(this.#resolver.resolve4(host)), answer(this.#resolver.resolve6(host))]);
    return [...v4, ...v6];
  }

  /** Cancels the queries in flight (they reject; the cluster is closing). */
  cancel(): void {
    this.#resolver.cancel();
  }
}
