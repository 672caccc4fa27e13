/**
 * The seam between the response engine (`engine/`) and the data cache (`data/`): interfaces
 * only. The data cache receives {@link ResponseServices}; the engine receives
 * {@link EngineHooks}. Neither module imports the other; the composition root (`cache.ts`)
 * wires them.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CaptureResult } from './capture.js';
import type { SyntheticRequest } from './synthetic.js';
import type { Entry } from './entry.js';
import type { PeerCluster } from './peers/cluster.js';
import type { PeerEndpoint } from './peers/endpoint.js';

/** Runs the downstream handler (or a whole app) for a request. May return a promise. */
export type Runner = (req: IncomingMessage, res: ServerResponse) => unknown;

/** A render's data reads, recorded while it runs (see {@link EngineHooks}). */
export interface RenderScope {
  /** Data keys read so far. */
  readonly reads: ReadonlySet<string>;
  /** A key it read changed before it finished: what it stores must be stale at birth. */
  readonly tainted: boolean;
}

/**
 * What the data cache plugs into the engine: dependency recording around renders, the reverse
 * index kept in step with stored entries, and ESI assembly.
 */
export interface EngineHooks {
  /** Opens a scope for a response render of `req`; sub-requests it makes run through `runner`. */
  openScope(req: IncomingMessage, runner: Runner | undefined): RenderScope;
  /** Runs `fn` inside `scope` (AsyncLocalStorage), so the reads it makes are recorded there. */
  runInScope<T>(scope: RenderScope, fn: () => T): T;
  /** Closes a scope once its render ended. */
  closeScope(scope: RenderScope): void;
  /** The entry under `key` changed: stored (`after`), replaced (both) or dropped (`before` only). */
  onEntry(key: string, before: Entry | undefined, after: Entry | undefined): void;
  /** ESI includes (switched in by the composition root only with `options.includes`). */
  readonly includes: IncludeHooks;
}

/** ESI templates: recognised when a response is stored, assembled when it is served. */
export interface IncludeHooks {
  /** Whether a response with this `content-type` may be a template (HTML). */
  isHtml(contentType: unknown): boolean;
  /** Whether `body` is a template with `<esi:include>` tags (its parse is kept for {@link assemble}). */
  isTemplate(body: Buffer): boolean;
  /** The body of the template `body` for `req`, each include filled from the data cache. Rejects when the page must fail. */
  assemble(body: Buffer, req: IncomingMessage, runner: Runner | undefined): Promise<Buffer>;
}

/** What the data cache uses of the response side. */
export interface ResponseServices {
  /** Plugs the data cache's hooks into the engine (once, at construction). */
  attach(hooks: EngineHooks): void;
  /** The `storedAt` for a load starting now (never before the newest invalidation applied). */
  renderTime(): number;
  /** Marks the response entry under `key` stale because data it was rendered from changed. */
  markStale(key: string): boolean;
  /** The data key `key`, which some responses were rendered from, was deleted or changed (the CDN purges its tag). */
  dataChanged(key: string): void;
  /** Runs a GET through the wrapped app without the response cache (a relative `fetch`). */
  subrequest(init: SyntheticRequest, runner: Runner | undefined): Promise<CaptureResult>;
  /** Whether an invalidation applied here reaches `entry` (judges peer copies and tagged values). */
  isInvalidated(entry: Entry): boolean;
  /** Calls `hook` with every invalidation applied here (local, flush or peer); returns an unsubscribe. */
  onInvalidate(hook: (record: { readonly tags: readonly string[]; readonly hard: boolean }) => void): () => void;
  /**
   * Invalidates `tags` as `cache.invalidateTags` does (`hard`: what carries them must not be
   * served at all), through the same propagation to peers and shared stores.
   */
  invalidateTags(tags: readonly string[], hard: boolean): void;
  /** The cluster (undefined without `peers.nodes`). */
  readonly peers: PeerCluster | undefined;
  /** The peer endpoint (undefined without `peers.secret`), to register the data namespace on. */
  readonly endpoint: PeerEndpoint | undefined;
}
