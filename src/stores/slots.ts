/**
 * A least-recently-used table bounded by bytes, built for the memory tier: each key has a slot
 * number; its value, key and size sit in arrays at that number and the recency order is two
 * Int32Arrays, so a kept entry costs its Map entry and a few array cells, no object of its own.
 * Unlike lru-cache it lets its owner change a slot's value and size without touching recency
 * (the memory tier packs and unpacks entries in place), and it grows its arrays on demand.
 */

/** No slot: the end of the recency list. */
const NONE = -1;

/** Slots a table starts with; the arrays double when full. */
const INITIAL = 64;

/**
 * A byte-bounded LRU table of `V` by string key, with slot numbers its owner may use, and beside
 * each value a second one of type `A` the owner keeps there (the memory tier: a hot entry's packed form).
 */
export class Slots<V, A = undefined> {
  readonly #index = new Map<string, number>();
  #keys: Array<string | undefined> = [];
  #values: Array<V | undefined> = [];
  #aside: Array<A | undefined> = [];
  #sizes: number[] = [];
  #prev = new Int32Array(INITIAL);
  #next = new Int32Array(INITIAL);
  readonly #free: number[] = [];
  /** Most recently used slot, and least. */
  #head = NONE;
  #tail = NONE;
  #bytes = 0;

  /** Bytes of all kept values, as their sizes were given. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Keys kept. */
  get count(): number {
    return this.#index.size;
  }

  /** The slot of `key`, or -1. */
  slotOf(key: string): number {
    return this.#index.get(key) ?? NONE;
  }

  value(slot: number): V {
    return this.#values[slot]!;
  }

  key(slot: number): string {
    return this.#keys[slot]!;
  }

  size(slot: number): number {
    return this.#sizes[slot]!;
  }

  /** What the owner keeps beside the value of `slot` (undefined unless set since the slot was filled). */
  aside(slot: number): A | undefined {
    return this.#aside[slot];
  }

  setAside(slot: number, value: A | undefined): void {
    this.#aside[slot] = value;
  }

  /** Replaces a slot's value and size; its recency stays. */
  replace(slot: number, value: V, size: number): void {
    this.#values[slot] = value;
    this.#bytes += size - this.#sizes[slot]!;
    this.#sizes[slot] = size;
  }

  /** Makes `slot` the most recently used. */
  touch(slot: number): void {
    if (slot === this.#head) return;
    this.#unlink(slot);
    this.#linkHead(slot);
  }

  /** Keeps `value` under `key` as the most recently used (replacing what was there); returns its slot. */
  set(key: string, value: V, size: number): number {
    let slot = this.#index.get(key);
    if (slot !== undefined) {
      this.replace(slot, value, size);
      this.#aside[slot] = undefined;
      this.touch(slot);
      return slot;
    }
    slot = this.#free.pop() ?? this.#grow();
    this.#index.set(key, slot);
    this.#keys[slot] = key;
    this.#values[slot] = value;
    this.#sizes[slot] = size;
    this.#bytes += size;
    this.#linkHead(slot);
    return slot;
  }

  /** Removes `slot` (its key and value). */
  remove(slot: number): void {
    this.#index.delete(this.#keys[slot]!);
    this.#unlink(slot);
    this.#bytes -= this.#sizes[slot]!;
    this.#keys[slot] = undefined;
    this.#values[slot] = undefined;
    this.#aside[slot] = undefined;
    this.#sizes[slot] = 0;
    this.#free.push(slot);
  }

  /** The least recently used slot, or -1 when empty. */
  get tail(): number {
    return this.#tail;
  }

  /** Keys, most recently used first. */
  *keys(): IterableIterator<string> {
    for (let slot = this.#head; slot !== NONE; slot = this.#next[slot]!) yield this.#keys[slot]!;
  }

  clear(): void {
    this.#index.clear();
    this.#keys = [];
    this.#values = [];
    this.#aside = [];
    this.#sizes = [];
    this.#prev = new Int32Array(INITIAL);
    this.#next = new Int32Array(INITIAL);
    this.#free.length = 0;
    this.#head = this.#tail = NONE;
    this.#bytes = 0;
  }

  /** A new slot number past the used ones, growing the recency arrays when full. */
  #grow(): number {
    const slot = this.#keys.length;
    if (slot >= this.#prev.length) {
      const prev = new Int32Array(this.#prev.length * 2);
      prev.set(this.#prev);
      this.#prev = prev;
      const next = new Int32Array(this.#next.length * 2);
      next.set(this.#next);
      this.#next = next;
    }
    this.#keys.push(undefined);
    this.#values.push(undefined);
    this.#aside.push(undefined);
    this.#sizes.push(0);
    return slot;
  }

  #linkHead(slot: number): void {
    this.#prev[slot] = NONE;
    this.#next[slot] = this.#head;
    if (this.#head !== NONE) this.#prev[this.#head] = slot;
    this.#head = slot;
    if (this.#tail === NONE) this.#tail = slot;
  }

  #unlink(slot: number): void {
    const prev = this.#prev[slot]!;
    const next = this.#next[slot]!;
    if (prev === NONE) this.#head = next;
    else this.#next[prev] = next;
    if (next === NONE) this.#tail = prev;
    else this.#prev[next] = prev;
  }
}
