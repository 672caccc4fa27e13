/**
 * Invalidations shared through Redis: every node appends the invalidations it receives (API,
 * flush endpoint, tags) to one Redis stream, `<prefix>inv`, capped at `maxInvalidations` records,
 * and reads everyone else's from it with a blocking `XREAD` on a connection of its own.
 *
 * A stream rather than pub/sub because a stream remembers: a node that starts, or was cut off
 * from Redis, reads on from the last record it saw (a new node from the oldest one kept), so no
 * invalidation is lost while it was away. If records it never read were trimmed meanwhile, it
 * cannot know which paths they named and marks everything stale (a soft invalidation of `/`:
 * served within grace while refreshed, nothing deleted), as the peer propagation does. So it does
 * when the stream it read is gone: missing, or reset (Redis restarted empty, flushed, the stream
 * deleted and written again). A stream's identity is an epoch token next to it,
 * `<prefix>inv:epoch`, made by the first reader that finds none; a reader that comes back to
 * another epoch (or none) than the one it read under has lost whatever was written meanwhile.
 * The token and the stream's state are read together by one script (on a Redis Cluster both keys
 * share the hash tag `{inv}`, so one slot: see redis-keys.ts).
 *
 * Records this node could not append (Redis down) wait in order in a bounded queue and are sent
 * when Redis answers again.
 */
import { randomBytes } from 'node:crypto';
import createDebug from 'debug';
import { readerClient, SKIPPED, type GuardedClient, type RedisClientLike } from './redis-client.js';
import type { SharedInvalidation, SharedInvalidations } from './store.js';

const debug = createDebug('stratacache:store');

/** How long one XREAD blocks before it is issued again (ms). */
const BLOCK = 2000;
/** Records waiting to be appended while Redis is down; past it the oldest are dropped (and counted). */
const MAX_PENDING = 10_000;

/**
 * The epoch token of the stream KEYS[1] (under KEYS[2], set to ARGV[1] when there is none) and
 * the stream's `XINFO STREAM` (nil when it is missing). In a script so that a cluster client
 * sends it to the slot of its keys (`XINFO` alone names no key to route by).
 */
const EPOCH = "local v = redis.call('GET', KEYS[2]) if not v then redis.call('SET', KEYS[2], ARGV[1]) v = ARGV[1] end local info = redis.pcall('XINFO', 'STREAM', KEYS[1]) if type(info) == 'table' and info.err then info = false end return {v, info}";

/** The shared invalidation stream of one Redis store. */
export class RedisInvalidations implements SharedInvalidations {
  /** Records appended to the stream by this node. */
  published = 0;
  /** Records of other nodes applied here (gap resets included). */
  applied = 0;
  /** Records dropped because Redis stayed down past {@link MAX_PENDING} of them. */
  dropped = 0;
  readonly #guard: GuardedClient;
  readonly #key: string;
  readonly #epochKey: string;
  readonly #node: string;
  readonly #max: number;
  readonly #pending: SharedInvalidation[] = [];
  #draining = false;
  #retry: NodeJS.Timeout | undefined;
  #reader: RedisClientLike | undefined;
  #reading: Promise<void> | undefined;
  #lastId = '0';
  /** The epoch of the stream read so far (undefined until first read). */
  #epoch: string | undefined;
  /** The reader's connection closed since the last check (ioredis may resend a blocked XREAD on its own). */
  #cut = false;
  #closed = false;

  constructor(guard: GuardedClient, options: { stream: string; epoch: string; node: string; max: number }) {
    this.#guard = guard;
    this.#key = options.stream;
    this.#epochKey = options.epoch;
    this.#node = options.node;
    this.#max = options.max;
  }

  /** Appends a local invalidation for the other nodes (in order; kept and retried while Redis is down). */
  publish(record: SharedInvalidation): void {
    if (this.#closed) return;
    this.#pending.push({ paths: record.paths, tags: record.tags, scope: record.scope, hard: record.hard, at: record.at });
    if (this.#pending.length > MAX_PENDING) {
      this.#pending.shift();
      this.dropped++;
    }
    void this.#drain();
  }

  /**
   * Starts reading the other nodes' records (from the oldest kept) and hands each to `apply`
   * with the id of the node that sent it. Once per store.
   */
  start(apply: (record: SharedInvalidation, node: string) => void): void {
    if (this.#reading !== undefined || this.#closed) return;
    // Its own connection: XREAD BLOCK holds it. Commands may wait a block's length.
    this.#reader = readerClient(this.#guard.client, BLOCK + 5000);
    this.#reader.on('error', (error) => debug('redis invalidation reader: %s', (error as Error).message));
    this.#reader.on('close', () => (this.#cut = true));
    this.#reading = this.#read(this.#reader, apply);
  }

  /** Stops reading and sending. Records still queued are not sent. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#retry);
    this.#reader?.disconnect();
    await this.#reading;
  }

  async #drain(): Promise<void> {
    if (this.#draining) return;
    this.#draining = true;
    try {
      while (this.#pending.length > 0 && !this.#closed) {
        const record = this.#pending[0]!;
        const fields = ['o', this.#node, 'r', JSON.stringify(record)];
        const sent = await this.#guard.run('xadd', (c) => c.xadd(this.#key, 'MAXLEN', '~', this.#max, '*', ...fields)).catch(() => SKIPPED);
        if (sent === SKIPPED) {
          // Redis is down: try again later, in order.
          clearTimeout(this.#retry);
          this.#retry = setTimeout(() => void this.#drain(), 250);
          this.#retry.unref();
          return;
        }
        this.#pending.shift();
        this.published++;
      }
    } finally {
      this.#draining = false;
    }
  }

  async #read(reader: RedisClientLike, apply: (record: SharedInvalidation, node: string) => void): Promise<void> {
    let delay = 50;
    let reconnected = false;
    while (!this.#closed) {
      try {
        if (reconnected || this.#cut || this.#epoch === undefined) {
          this.#cut = false;
          await this.#checkGap(reader, apply);
        }
        reconnected = false;
        const reply = (await reader.xread('COUNT', 500, 'BLOCK', BLOCK, 'STREAMS', this.#key, this.#lastId)) as Array<[string, Array<[string, string[]]>]> | null;
        delay = 50;
        for (const [, records] of reply ?? []) for (const [id, fields] of records) this.#deliver(id, fields, apply);
      } catch (error) {
        if (this.#closed) break;
        debug('redis invalidation read failed: %s (again in %d ms)', (error as Error).message, delay);
        reconnected = true;
        await new Promise((r) => setTimeout(r, delay).unref());
        delay = Math.min(delay * 2, 2000);
      }
    }
  }

  #deliver(id: string, fields: string[], apply: (record: SharedInvalidation, node: string) => void): void {
    this.#lastId = id;
    const node = fields[fields.indexOf('o') + 1];
    const raw = fields[fields.indexOf('r') + 1];
    if (node === undefined || raw === undefined || node === this.#node) return;
    let record: SharedInvalidation;
    try {
      record = parseRecord(JSON.parse(raw));
    } catch (error) {
      debug('redis invalidation %s ignored: %s', id, (error as Error).message);
      return;
    }
    this.applied++;
    apply(record, node);
  }

  /**
   * On first contact, learns the stream's epoch. After a disconnection: if the epoch changed (or
   * was gone), the stream was reset and everything written before is lost: everything is marked
   * stale (soft, grace applies) and the new stream is read from its start. Otherwise, if records
   * newer than the last one read were trimmed unseen (the stream's `max-deleted-entry-id`, Redis
   * 7+; before that, an oldest kept record newer than the last read), or the stream is missing
   * although records were read from it, the same. A failing command throws (checked again on
   * the next attempt).
   */
  async #checkGap(reader: RedisClientLike, apply: (record: SharedInvalidation, node: string) => void): Promise<void> {
    const [token, info] = (await reader.eval(EPOCH, 2, this.#key, this.#epochKey, randomBytes(8).toString('hex'))) as [unknown, unknown[] | null];
    const epoch = String(token);
    const known = this.#epoch;
    this.#epoch = epoch;
    if (known === undefined) return;
    if (epoch !== known) return this.#lost(apply, 'the stream was reset', '0');
    if (this.#lastId === '0') return;
    if (info === null) return this.#lost(apply, 'the stream is missing', '0');
    const field = (name: string): unknown => info[info.indexOf(name) + 1];
    const deleted = field('max-deleted-entry-id');
    const oldest = (field('first-entry') as [string] | null | undefined)?.[0];
    const gap = typeof deleted === 'string' ? compareIds(deleted, this.#lastId) > 0 : oldest !== undefined && compareIds(oldest, this.#lastId) > 0;
    if (gap) this.#lost(apply, `records after ${this.#lastId} were trimmed unread`, this.#lastId);
  }

  /** Records were lost: everything stale here (a soft invalidation of `/`); reading goes on from `from`. */
  #lost(apply: (record: SharedInvalidation, node: string) => void, why: string, from: string): void {
    debug('redis invalidation gap: %s: everything stale', why);
    this.#lastId = from;
    this.applied++;
    apply({ paths: ['/'], tags: [], scope: 'tree', hard: false, at: Date.now() }, 'gap');
  }
}

/** Orders two stream ids (`<ms>-<seq>`). */
function compareIds(a: string, b: string): number {
  const [am = 0, as = 0] = a.split('-').map(Number);
  const [bm = 0, bs = 0] = b.split('-').map(Number);
  return am - bm || as - bs;
}

/** Checks a record read from Redis (any node could have written anything there). */
function parseRecord(value: unknown): SharedInvalidation {
  const r = value as Partial<SharedInvalidation> | null;
  const strings = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === 'string' && s !== '');
  if (r === null || typeof r !== 'object' || !strings(r.paths) || !strings(r.tags)) throw new Error('bad paths or tags');
  if ((r.scope !== 'tree' && r.scope !== 'resource') || typeof r.hard !== 'boolean' || typeof r.at !== 'number' || !Number.isFinite(r.at)) throw new Error('bad scope, hard or at');
  if (!r.paths.every((p) => p.startsWith('/'))) throw new Error('bad path');
  return { paths: r.paths, tags: r.tags, scope: r.scope, hard: r.hard, at: r.at };
}
