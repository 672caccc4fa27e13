/**
 * Disk tier: one file per key, bounded by bytes, surviving restarts. Optional: pass an instance in
 * `createCache({ stores: [new DiskStore({ dir, maxSize })] })`; a hit here is promoted to memory.
 *
 * Layout: `<dir>/<h[0..2]>/<h>` where `h` is the sha256 hex of the key; the file format (a frame
 * around {@link encodeEntry} with a digest per section) is in `disk-file.ts`. Writes go to a temp
 * file in the same directory and are then renamed over the old file: rename is atomic, so a reader
 * sees the old entry or the new one (and one that opened the old file keeps reading it whole).
 * An entry larger than `streamThreshold` is sent to a client from the file as it is read
 * ({@link DiskStore.open}), never held in memory whole.
 */
import { createHash } from 'node:crypto';
import { mkdir, open, readdir, rename, stat, unlink, utimes, writeFile, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import createDebug from 'debug';
import type { Entry } from '../entry.js';
import { frame, openEntry, unframe } from './disk-file.js';
import { describeValue, integerOption } from '../options/validate.js';
import type { Bytes, Milliseconds } from '../options/units.js';
import type { CacheStore } from './store.js';

const debug = createDebug('stratacache:store');

/** Options of {@link DiskStore}. */
export interface DiskStoreOptions {
  /**
   * Directory holding the cache files; created (with parents) if missing. Use one `DiskStore`
   * per directory at a time: the byte index lives in the process that opened it. Only files whose
   * names this store writes are ever read or removed; anything else in the directory is left alone.
   * Required: there is no default.
   * @default undefined (required)
   */
  dir: string;
  /**
   * Byte budget: total size of the cache files on disk (entry bytes plus a small header and the
   * key). Past it the least recently used files are removed. Must be a positive integer:
   * an unbounded disk cache is refused.
   * @default undefined (required)
   */
  maxSize: Bytes;
  /**
   * Largest single file in bytes; a larger entry is not written (and any older entry under its
   * key is removed, so the store never serves what the caller just replaced). At most `maxSize`.
   * @default maxSize
   */
  maxEntrySize?: Bytes;
  /**
   * How often in ms the byte index is rebuilt from the directory, so processes sharing it (Node
   * cluster workers) count each other's files against `maxSize` and evict the least recently used
   * of them. Between rescans the directory can exceed `maxSize` by what the other processes wrote
   * meanwhile. `0` never rescans (one process per directory).
   * @default 10000
   */
  rescanInterval?: Milliseconds;
  /**
   * Files larger than this many bytes are not read whole by a lookup of the response cache: their
   * metadata is read and checked, and the body is streamed from the file to the client (checked
   * against its digest as it goes). Smaller ones are read whole (and may be promoted to memory).
   * `get` (the data cache, peer replies) always reads whole.
   * @default 1048576 (1 MiB)
   */
  streamThreshold?: Bytes;
}

/** Defaults of {@link DiskStoreOptions} that have one (frozen). */
export const DISK_DEFAULTS = Object.freeze({ rescanInterval: 10_000, streamThreshold: 1024 * 1024 });

/** A temp file older than this is a leftover of a process that died mid-write (ms). */
const STALE_TEMP = 60_000;

const HASH_NAME = /^[0-9a-f]{64}$/;
const TEMP_NAME = /^[0-9a-f]{64}\.\d+\.\d+\.tmp$/;
const FAN_NAME = /^[0-9a-f]{2}$/;

/** What the index knows about one file. Identity matters: see {@link DiskStore.#evict}. */
interface FileRecord {
  size: number;
}

/** The sha256 hex of a key: its file name. */
function hashKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/**
 * Which file a path names: a write renames a new inode over it. Not the mtime, which every hit
 * touches (a body found damaged while it streams must still be removed after that touch).
 */
function fileIdentity(st: { ino: number; size: number }): string {
  return `${st.ino}:${st.size}`;
}

function isNotFound(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

/**
 * Byte-bounded LRU store on the local file system. Every method answers with a promise; none
 * throws for a missing, corrupt, truncated, foreign or expired file (those are misses, and the
 * file is removed). Errors of the file system itself (permissions, full disk) reject, and the
 * engine counts them without failing a response.
 */
export class DiskStore implements CacheStore {
  readonly name = 'disk';
  readonly #dir: string;
  readonly #maxSize: number;
  readonly #maxEntrySize: number;
  /** Hash → record, least recently used first (Map order is the LRU order). */
  readonly #index = new Map<string, FileRecord>();
  #bytes = 0;
  /** Resolves when the start-up scan has rebuilt the index; every operation waits for it. */
  readonly #ready: Promise<void>;
  /** Per-hash queue of mutations (write, delete, evict), so two of them never interleave. */
  readonly #queues = new Map<string, Promise<void>>();
  /** Background work outside the queues (recency touches), awaited by close(). */
  readonly #pending = new Set<Promise<unknown>>();
  readonly #madeDirs = new Set<string>();
  #tempCounter = 0;
  /** Rebuilds the index from the directory every this many ms (0: never). */
  readonly #rescanInterval: number;
  readonly #streamThreshold: number;
  #rescanTimer: NodeJS.Timeout | undefined;
  #rescanning: Promise<void> | undefined;
  /** Why the tier is off (the directory could not be created or read at start-up). */
  #broken: Error | undefined;
  #brokenReported = false;
  /** Entries read whole, and entries whose bodies were left in their file to be streamed. */
  readonly #reads = { whole: 0, streamed: 0 };
  #closed = false;

  /**
   * @throws TypeError or RangeError naming `options.<field>` and the value it got.
   */
  constructor(options: DiskStoreOptions) {
    if (options === null || typeof options !== 'object') {
      throw new TypeError(`expected options to be an object, got ${describeValue(options)}`);
    }
    if (typeof options.dir !== 'string' || options.dir === '') {
      throw new TypeError(`expected options.dir to be a non-empty directory path, got ${describeValue(options.dir)}`);
    }
    this.#dir = options.dir;
    this.#maxSize = integerOption('maxSize', options.maxSize, 1);
    this.#maxEntrySize = options.maxEntrySize === undefined ? this.#maxSize : integerOption('maxEntrySize', options.maxEntrySize, 1);
    if (this.#maxEntrySize > this.#maxSize) {
      throw new RangeError(`expected options.maxEntrySize to be at most options.maxSize (${this.#maxSize}), got ${this.#maxEntrySize}`);
    }
    this.#rescanInterval = integerOption('rescanInterval', options.rescanInterval ?? DISK_DEFAULTS.rescanInterval, 0);
    this.#streamThreshold = integerOption('streamThreshold', options.streamThreshold ?? DISK_DEFAULTS.streamThreshold, 0);
    // A start-up that cannot create or read the directory turns the tier off instead of failing
    // (or holding up) requests: reported on stderr now and to the first operation (the engine's
    // `error` event); every later operation is a miss or a no-op.
    this.#ready = this.#scan().then(
      () => this.#startRescans(),
      (error: unknown) => {
        this.#broken = error as Error;
        debug('disk scan of %s failed: %s', this.#dir, (error as Error).message);
        process.emitWarning(`disk tier off: cannot use ${this.#dir}: ${(error as Error).message}`, { code: 'STRATACACHE_DISK' });
      },
    );
  }

  /** True when the tier is off; the first operation to find out rejects with the start-up error. */
  #off(): boolean {
    if (this.#broken === undefined) return false;
    if (!this.#brokenReported) {
      this.#brokenReported = true;
      throw this.#broken;
    }
    return true;
  }

  /** The directory this store writes to. */
  get dir(): string {
    return this.#dir;
  }

  /** Resolves once the start-up scan is done (operations wait for it on their own). */
  ready(): Promise<void> {
    return this.#ready;
  }

  /** The path of the file that holds `key` (for tools and tests). */
  pathOf(key: string): string {
    return this.#path(hashKey(key));
  }

  /**
   * The entry under `key`, or undefined: also for a file that is damaged, truncated, holds another
   * key's entry, or is past its `expiresAt` (such a file is removed before this resolves).
   */
  get(key: string): Promise<Entry | undefined> {
    return this.#read(key, false);
  }

  /**
   * Like {@link get}, but the bodies of a file larger than `streamThreshold` stay in the file: the
   * entry comes with an empty `body` and a `source` to stream them from (its metadata is checked
   * now, each body as it is streamed). The response cache's lookups use this.
   */
  open(key: string): Promise<Entry | undefined> {
    return this.#read(key, true);
  }

  async #read(key: string, streamable: boolean): Promise<Entry | undefined> {
    await this.#ready;
    if (this.#off()) return undefined;
    const h = hashKey(key);
    // A read after a write of the same key sees it (operations on one key apply in call order).
    await this.#queues.get(h);
    const record = this.#index.get(h);
    // Not indexed here, but another process sharing the directory may have written it.
    if (record === undefined && this.#rescanInterval === 0) return undefined;
    const path = this.#path(h);
    let entry: Entry | string;
    let identity: string;
    let size: number;
    let fh: FileHandle | undefined;
    try {
      fh = await open(path, 'r');
      const st = await fh.stat();
      identity = fileIdentity(st);
      size = st.size;
      if (streamable && size > this.#streamThreshold) {
        // The file stays open for the entry's source (closed once the body is sent or read).
        entry = await openEntry(fh, key, size, () => void this.#removeIfSame(h, identity).catch(() => undefined));
        if (typeof entry !== 'string') {
          fh = undefined;
          this.#reads.streamed++;
        }
      } else {
        entry = unframe(key, await fh.readFile());
        this.#reads.whole++;
      }
    } catch (error) {
      if (!isNotFound(error)) throw error;
      // Removed behind our back: forget it.
      if (record !== undefined && this.#index.get(h) === record) this.#forget(h, record);
      return undefined;
    } finally {
      await fh?.close();
    }
    if (typeof entry === 'string' || Date.now() >= entry.expiresAt) {
      debug('disk miss: %s %s', typeof entry === 'string' ? entry : 'expired', h);
      if (typeof entry !== 'string') entry.source?.release();
      await this.#removeIfSame(h, identity);
      return undefined;
    }
    // Most recently used now; also in the file's mtime, so the order survives a restart (and
    // other processes' rescans see it).
    if (record === undefined) {
      if (!this.#index.has(h)) {
        this.#index.set(h, { size });
        this.#bytes += size;
      }
    } else if (this.#index.get(h) === record) {
      this.#index.delete(h);
      this.#index.set(h, record);
    }
    const now = new Date();
    this.#background(utimes(path, now, now).catch(() => undefined));
    return entry;
  }

  /**
   * Writes `entry` under `key` (temp file, then rename), then evicts least recently used files past
   * `maxSize`. Operations on one key apply in call order. An entry larger than `maxEntrySize` or
   * already past `expiresAt` is not written, and removes the older entry under its key.
   */
  async set(key: string, entry: Entry): Promise<void> {
    await this.#ready;
    if (this.#off()) return;
    const h = hashKey(key);
    const bytes = frame(key, entry);
    if (bytes.length > this.#maxEntrySize || Date.now() >= entry.expiresAt) {
      debug('disk skip: %s %s', bytes.length > this.#maxEntrySize ? `too large (${bytes.length} bytes)` : 'expired', h);
      // The caller replaced this key: an older file must not answer for it any more.
      return this.#enqueue(h, () => this.#unlink(h));
    }
    return this.#enqueue(h, async () => {
      const path = this.#path(h);
      const temp = `${path}.${process.pid}.${++this.#tempCounter}.tmp`;
      try {
        await this.#writeTemp(temp, bytes);
        await rename(temp, path);
      } catch (error) {
        await unlink(temp).catch(() => undefined);
        throw error;
      }
      const old = this.#index.get(h);
      if (old !== undefined) this.#forget(h, old);
      this.#index.set(h, { size: bytes.length });
      this.#bytes += bytes.length;
      this.#evict(h);
    });
  }

  /** Removes the file of `key`; a missing key is not an error. */
  async delete(key: string): Promise<void> {
    await this.#ready;
    if (this.#off()) return;
    const h = hashKey(key);
    return this.#enqueue(h, () => this.#unlink(h));
  }

  /** Files and their total bytes on disk, as indexed (0 until the start-up scan is done). */
  size(): { entries: number; bytes: number } {
    return { entries: this.#index.size, bytes: this.#bytes };
  }

  /**
   * For `cache.stats().tiers`: files and bytes, and how many entries were read whole and how many
   * were opened with their bodies left in the file (streamed to the client).
   */
  stats(): { entries: number; bytes: number; readsWhole: number; readsStreamed: number } {
    return { ...this.size(), readsWhole: this.#reads.whole, readsStreamed: this.#reads.streamed };
  }

  /** Waits for the start-up scan and every pending write, delete and eviction. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#rescanTimer);
    await this.#ready;
    await this.#rescanning;
    while (this.#queues.size > 0 || this.#pending.size > 0) {
      await Promise.allSettled([...this.#queues.values(), ...this.#pending]);
    }
  }

  #path(h: string): string {
    return join(this.#dir, h.slice(0, 2), h);
  }

  async #writeTemp(temp: string, bytes: Buffer): Promise<void> {
    const sub = dirname(temp);
    if (!this.#madeDirs.has(sub)) {
      await mkdir(sub, { recursive: true });
      this.#madeDirs.add(sub);
    }
    try {
      await writeFile(temp, bytes, { flag: 'wx' });
    } catch (error) {
      if (!isNotFound(error)) throw error;
      // The fan-out directory was removed behind our back: make it again, once.
      await mkdir(sub, { recursive: true });
      await writeFile(temp, bytes, { flag: 'wx' });
    }
  }

  /** Removes the file of `h` and its record. */
  async #unlink(h: string): Promise<void> {
    try {
      await unlink(this.#path(h));
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
    const record = this.#index.get(h);
    if (record !== undefined) this.#forget(h, record);
  }

  /**
   * Removes a bad file, unless a write replaced it since it was read. Trace without the check:
   * get reads a corrupt file; set renames a good one over it; get unlinks the good one.
   */
  #removeIfSame(h: string, identity: string): Promise<void> {
    return this.#enqueue(h, async () => {
      let st;
      try {
        st = await stat(this.#path(h));
      } catch (error) {
        if (isNotFound(error)) return;
        throw error;
      }
      if (fileIdentity(st) === identity) await this.#unlink(h);
    });
  }

  #forget(h: string, record: FileRecord): void {
    this.#index.delete(h);
    this.#bytes -= record.size;
  }

  /**
   * Drops least recently used files until the budget holds. The record leaves the index at once
   * (so the budget holds now); the unlink waits in that hash's queue. Trace it guards against:
   * set(k) is writing; eviction drops k's old record; set(k) finishes and indexes the new file;
   * the unlink then runs — and must not remove the new file, so it only runs if k is still absent.
   */
  #evict(keep: string): void {
    for (const [h, record] of this.#index) {
      if (this.#bytes <= this.#maxSize) break;
      if (h === keep) continue;
      this.#forget(h, record);
      debug('disk evict %s (%d bytes)', h, record.size);
      void this.#enqueue(h, async () => {
        if (this.#index.has(h)) return;
        try {
          await unlink(this.#path(h));
        } catch (error) {
          if (!isNotFound(error)) debug('disk evict %s failed: %s', h, (error as Error).message);
        }
      }).catch(() => undefined);
    }
  }

  /** Runs `task` after every earlier task of the same hash. */
  #enqueue(h: string, task: () => Promise<void>): Promise<void> {
    const previous = this.#queues.get(h) ?? Promise.resolve();
    const run = previous.then(task);
    const tail = run.catch(() => undefined);
    this.#queues.set(h, tail);
    void tail.then(() => {
      if (this.#queues.get(h) === tail) this.#queues.delete(h);
    });
    return run;
  }

  #background(p: Promise<unknown>): void {
    this.#pending.add(p);
    void p.finally(() => this.#pending.delete(p));
  }

  /**
   * Rebuilds the index from the directory at start-up: sizes from stat, recency from mtime
   * (touched on every hit). Then evicts past `maxSize` (the budget may have shrunk since the last run).
   */
  async #scan(): Promise<void> {
    await mkdir(this.#dir, { recursive: true });
    this.#replaceIndex(await this.#list());
    const evicted: string[] = [];
    for (const [h, record] of this.#index) {
      if (this.#bytes <= this.#maxSize) break;
      this.#forget(h, record);
      evicted.push(h);
    }
    await Promise.all(evicted.map((h) => unlink(this.#path(h)).catch(() => undefined)));
    debug('disk scan %s: %d files, %d bytes, %d evicted', this.#dir, this.#index.size, this.#bytes, evicted.length);
  }

  #startRescans(): void {
    if (this.#rescanInterval === 0 || this.#closed) return;
    this.#rescanTimer = setInterval(() => {
      this.#rescanning ??= this.#rescan()
        .catch((error: unknown) => debug('disk rescan of %s failed: %s', this.#dir, (error as Error).message))
        .finally(() => (this.#rescanning = undefined));
    }, this.#rescanInterval);
    this.#rescanTimer.unref();
  }

  /**
   * Processes sharing the directory each keep an index of their own: a rescan takes in the files
   * the others wrote (and forgets those they removed), then evicts the least recently used past
   * `maxSize`, whoever wrote them. Trace: workers A and B each write 60% of maxSize; neither
   * alone is over budget; A's rescan sees 120% and removes the oldest files, B's own included.
   */
  async #rescan(): Promise<void> {
    this.#replaceIndex(await this.#list());
    this.#evict('');
  }

  #replaceIndex(found: Array<{ h: string; size: number; mtime: number }>): void {
    found.sort((a, b) => a.mtime - b.mtime);
    this.#index.clear();
    this.#bytes = 0;
    for (const { h, size } of found) {
      this.#index.set(h, { size });
      this.#bytes += size;
    }
  }

  /**
   * The cache files in the directory with their sizes and mtimes. Temp files older than
   * {@link STALE_TEMP} are leftovers of an interrupted write and are removed; younger ones may
   * be another process's write in progress and are left alone.
   */
  async #list(): Promise<Array<{ h: string; size: number; mtime: number }>> {
    const found: Array<{ h: string; size: number; mtime: number }> = [];
    const top = await readdir(this.#dir, { withFileTypes: true });
    const now = Date.now();
    for (const sub of top) {
      if (!sub.isDirectory() || !FAN_NAME.test(sub.name)) continue;
      const subPath = join(this.#dir, sub.name);
      this.#madeDirs.add(subPath);
      const names = await readdir(subPath).catch((error: unknown) => (isNotFound(error) ? [] : Promise.reject(error)));
      await Promise.all(
        names.map(async (name) => {
          const path = join(subPath, name);
          const temp = TEMP_NAME.test(name);
          if (!temp && (!HASH_NAME.test(name) || !name.startsWith(sub.name))) return;
          try {
            const st = await stat(path);
            if (temp) {
              if (now - st.mtimeMs > STALE_TEMP) await unlink(path).catch(() => undefined);
            } else if (st.isFile()) found.push({ h: name, size: st.size, mtime: st.mtimeMs });
          } catch (error) {
            if (!isNotFound(error)) throw error;
          }
        }),
      );
    }
    return found;
  }
}

/**
 * A disk tier that survives restarts: `createCache({ stores: [diskStore({ dir, maxSize })] })`.
 * @throws TypeError or RangeError naming `options.<field>` and the value it got.
 */
export function diskStore(options: DiskStoreOptions): DiskStore {
  return new DiskStore(options);
}
