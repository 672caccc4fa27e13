/**
 * Namespaces of the data cache (`cache.data.namespace('user:42')`): the same get / fetch /
 * delete over keys of their own, and `clear()`, which drops every value and response of the
 * namespace on every node without knowing their keys.
 *
 * How: every entry stored through a namespace carries the namespace's tag (and those of the
 * namespaces around it). `clear()` is a hard invalidation of that tag, applied like
 * `cache.invalidateTags`: here it drops the entries carrying it and the loads in flight for them
 * (see flights.ts); the invalidation record goes to the peers (`options.peers`, `propagate`) and
 * through a shared store's channel (`options.stores` with `invalidations`), where the same happens;
 * a copy stored before it, in a lower tier or on a peer, is refused by its tag's epoch. No key
 * is scanned on any node for the values themselves, only the local memory tier for what was
 * rendered from them.
 */
import type { DataFetchOptions, DataGetOptions, DataLoader, DataResponse } from './types.js';

/** What a namespace adds to a key and to what it stores. */
export interface NamespaceScope {
  /** Prefix of its value keys (`<name>:`). */
  readonly prefix: string;
  /** Appended to its fetch keys, after the request headers (never a header line: `(` is not a token character). */
  readonly fetchSuffix: string;
  /** Tags of its entries: its own and its parents'. */
  readonly tags: readonly string[];
}

/** The data cache's operations a namespace runs in its scope. */
export interface NamespaceHost {
  get<T>(key: string, loader: DataLoader<T>, options: DataGetOptions, scope: NamespaceScope): Promise<T>;
  fetch(url: string, options: DataFetchOptions, scope: NamespaceScope): Promise<DataResponse>;
  delete(key: string, scope: NamespaceScope): boolean;
  /** A hard invalidation of `tags` through the cache's invalidation propagation. */
  invalidateTags(tags: readonly string[]): void;
}

/** The tag every entry of namespace `name` carries. */
export function namespaceTag(name: string): string {
  return `stratacache-ns:${name}`;
}

/** Checks a namespace name: a non-empty string without whitespace (it becomes a tag). */
function checkName(name: unknown): string {
  if (typeof name !== 'string' || name === '' || /\s/.test(name)) {
    throw new TypeError(`expected a namespace name to be a non-empty string without spaces, got ${JSON.stringify(name)}`);
  }
  return name;
}

/**
 * A namespace of the data cache. Its keys are the cache's keys prefixed with `<name>:`: `get(k)`
 * in namespace `user:42` is `cache.data.get('user:42:k')` carrying the namespace's tag (so a
 * top-level `get('user:42:k')` names the same value). A fetched URL is keyed apart per namespace.
 */
export class DataNamespace {
  /** The namespace's full name (`parent:child` for a nested one). */
  readonly name: string;
  readonly #host: NamespaceHost;
  readonly #scope: NamespaceScope;

  /** @internal Made by `cache.data.namespace(name)` or {@link namespace}. */
  constructor(host: NamespaceHost, name: string, parentTags: readonly string[] = []) {
    this.name = checkName(name);
    this.#host = host;
    this.#scope = { prefix: `${name}:`, fetchSuffix: `\n(namespace):${name}`, tags: [...parentTags, namespaceTag(name)] };
  }

  /** `cache.data.get` over this namespace's key `key` (its loader's `ctx.key` is the prefixed key). */
  get<T>(key: string, loader: DataLoader<T>, options: DataGetOptions = {}): Promise<T> {
    return this.#host.get(key, loader, options, this.#scope);
  }

  /** `cache.data.fetch` with its own entry in this namespace (cleared with it). */
  fetch(url: string, options: DataFetchOptions = {}): Promise<DataResponse> {
    return this.#host.fetch(url, options, this.#scope);
  }

  /**
   * Deletes this namespace's value under `key`, on this node (as `cache.data.delete`). A URL or a
   * path deletes its fetched responses in every namespace (`cache.data.delete(url)`).
   */
  delete(key: string): boolean {
    return this.#host.delete(key, this.#scope);
  }

  /**
   * Invalidates every value and response stored through this namespace (and its nested ones),
   * on every node: a hard tag invalidation propagated as `cache.invalidateTags` is. Loads of its
   * keys in flight are not stored; what was rendered from its data turns stale.
   */
  clear(): void {
    this.#host.invalidateTags([namespaceTag(this.name)]);
  }

  /** A namespace nested in this one (`<name>:<child>`), cleared with it too. */
  namespace(child: string): DataNamespace {
    return new DataNamespace(this.#host, `${this.name}:${checkName(child)}`, this.#scope.tags);
  }
}
