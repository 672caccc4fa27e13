/**
 * Render scopes and the dependency index. A scope is carried through a render by
 * AsyncLocalStorage: it records which data keys the render read and which URLs are being
 * rendered above it (to detect include loops). The index maps a data key to the responses and
 * data entries that read it, so a change to the key makes them stale.
 */
import { createHash } from 'node:crypto';
import type { LRUCache } from 'lru-cache';
import { boundedLru } from '../lru.js';
import type { Runner } from '../seam.js';

/** One render in progress: a response render, a loader, a sub-request or an include assembly. */
export interface Scope {
  /** Data keys read so far. */
  readonly reads: Set<string>;
  /**
   * What is being loaded, outermost first: paths being rendered (the page, then each fragment
   * inside it) and `get(<key>)` for loaders running.
   */
  readonly chain: readonly string[];
  /** Host of the outermost request: relative sub-requests are made to it. */
  readonly host: string;
  /** Runs the wrapped app for a relative sub-request (the app of the render in progress). */
  readonly runner: Runner | undefined;
  /** Set when a key this scope read changed before it finished: what it stores is stale at birth. */
  tainted: boolean;
  /** Called when the scope is tainted (a loader's scope detaches its flight). */
  readonly onTaint?: () => void;
}

/** Prefix of a dependent that is a response entry (the rest is its engine key). */
export const RESPONSE = 'r';
/** Prefix of a dependent that is a data entry (the rest is its data key). */
export const DATA = 'd';

interface Node {
  /** Digest of the bytes the dependents read, to tell a change from a reload of the same bytes. */
  digest: string | undefined;
  /** Dependents, oldest first (a Set keeps insertion order). */
  dependents: Set<string>;
}

/** A short digest of a body (loads only, never on a hit). */
export function digest(body: Buffer): string {
  return createHash('sha1').update(body).digest('base64');
}

/** Bounded reverse index: data key -> dependents, plus the scopes still rendering. */
export class DependencyIndex {
  readonly #nodes: LRUCache<string, Node>;
  readonly #maxDependents: number;
  readonly #active = new Set<Scope>();
  readonly #onIdle: (() => void) | undefined;

  /** `onIdle` runs each time the last open scope closes. */
  constructor(options: { maxKeys: number; maxDependents: number; onIdle?: () => void }) {
    this.#nodes = boundedLru<string, Node>(options.maxKeys);
    this.#maxDependents = options.maxDependents;
    this.#onIdle = options.onIdle;
  }

  /** Opens a scope; it is searched by {@link taint} until {@link close}. */
  open(init: Omit<Scope, 'reads' | 'tainted'>): Scope {
    const scope: Scope = { ...init, reads: new Set(), tainted: false };
    this.#active.add(scope);
    return scope;
  }

  close(scope: Scope): void {
    if (this.#active.delete(scope) && this.#active.size === 0) this.#onIdle?.();
  }

  /** Scopes still open (renders and loads in progress). */
  get openScopes(): number {
    return this.#active.size;
  }

  /**
   * Records that `dependent` read each of `keys`. `current` gives the digest of a key's bytes
   * now, for a key seen for the first time.
   */
  link(dependent: string, keys: readonly string[] | undefined, current: (key: string) => string | undefined): void {
    if (keys === undefined) return;
    for (const key of keys) {
      let node = this.#nodes.get(key);
      if (node === undefined) this.#nodes.set(key, (node = { digest: current(key), dependents: new Set() }));
      node.dependents.delete(dependent);
      node.dependents.add(dependent);
      if (node.dependents.size > this.#maxDependents) node.dependents.delete(node.dependents.values().next().value!);
    }
  }

  /** Forgets that `dependent` read `keys` (its entry was replaced, deleted or evicted). */
  unlink(dependent: string, keys: readonly string[] | undefined): void {
    if (keys === undefined) return;
    for (const key of keys) {
      const node = this.#nodes.peek(key);
      if (node === undefined) continue;
      node.dependents.delete(dependent);
      if (node.dependents.size === 0) this.#nodes.delete(key);
    }
  }

  /**
   * New bytes were stored under `key`. True when dependents read different bytes (they are now
   * out of date); the digest is updated either way.
   */
  changed(key: string, newDigest: string): boolean {
    const node = this.#nodes.peek(key);
    if (node === undefined) return false;
    const differs = node.digest !== undefined && node.digest !== newDigest;
    node.digest = newDigest;
    return differs;
  }

  /**
   * Removes and returns the dependents of `key`, and taints every scope still rendering that
   * read it. Event trace of the race this closes: page render reads key (v1); key changes to
   * v2 and its dependents are taken (the page is not among them yet); the page render ends and
   * would store a v1 page as fresh. The taint makes that page stale at birth instead.
   */
  take(key: string): string[] {
    for (const scope of this.#active) {
      if (!scope.reads.has(key)) continue;
      scope.tainted = true;
      scope.onTaint?.();
    }
    const node = this.#nodes.peek(key);
    if (node === undefined) return [];
    this.#nodes.delete(key);
    return [...node.dependents];
  }

  /** Data keys tracked (for stats and tests). */
  get size(): number {
    return this.#nodes.size;
  }
}
