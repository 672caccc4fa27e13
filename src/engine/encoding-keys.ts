/**
 * The Accept-Encoding part of a variant key, for responses with `Vary: Accept-Encoding`: not the
 * raw header (five spellings of one preference would be five variants and five renders) but the
 * content coding a response to it is sent in, chosen by the negotiation of compress/negotiate.ts
 * among the codings that can be sent for the URL: those the cache compresses into
 * (`compress.encodings`, for an origin that answers in identity) and those the origin itself was
 * seen to answer in; `identity` when none is accepted.
 *
 * An entry the origin encoded is stored under its own coding, so only requests that accept that
 * coding ever find it; an identity entry is stored under the coding its request negotiates (the
 * cache sends it, or identity, from its variants). The choice is memoised per set of codings and
 * header value: a hit does no parsing.
 */
import type { Coding } from '../compress/negotiate.js';
import { chooseCoding } from '../compress/negotiate.js';
import { headerOf, type Entry } from '../entry.js';

/** What one URL's responses were seen to be encoded in, and the choice that follows from it. */
export interface EncodingState {
  /** Content codings of stored responses (`identity` included), in the order first seen. */
  readonly seen: readonly string[];
  /** The codings a lookup negotiates among. */
  readonly available: readonly string[];
  /** Token per Accept-Encoding value for `available` (shared by every URL with the same list). */
  readonly memo: Map<string, string>;
}

/** Most header values memoised per list of codings before that memo starts over. */
const MEMO_MAX = 512;

/** Computes Accept-Encoding tokens of variant keys. */
export class EncodingKeys {
  /** Codings the cache compresses into, in its order of preference. */
  readonly #cache: readonly string[];
  readonly #memos = new Map<string, Map<string, string>>();
  /** The state of a URL none of whose responses was seen yet. */
  readonly initial: EncodingState;

  constructor(cacheCodings: readonly Coding[]) {
    this.#cache = cacheCodings;
    this.initial = this.#state([]);
  }

  /** The token of a request's `Accept-Encoding` for a URL in `state`. */
  token(state: EncodingState, header: string | string[] | undefined): string {
    const value = header === undefined ? '' : Array.isArray(header) ? header.join(', ') : header;
    let token = state.memo.get(value);
    if (token === undefined) {
      token = chooseCoding(value, state.available);
      if (state.memo.size >= MEMO_MAX) state.memo.clear();
      state.memo.set(value, token);
    }
    return token;
  }

  /** `state` having seen `entry`'s content coding (the same object when it was seen before). */
  learn(state: EncodingState, entry: Entry): EncodingState {
    const coding = codingOf(entry);
    return state.seen.includes(coding) ? state : this.#state([...state.seen, coding]);
  }

  /** The token `entry` is stored under for a request's `Accept-Encoding` (`state` has learnt `entry`). */
  storedToken(state: EncodingState, entry: Entry, header: string | string[] | undefined): string {
    const coding = codingOf(entry);
    return coding === 'identity' ? this.token(state, header) : coding;
  }

  #state(seen: readonly string[]): EncodingState {
    // The cache's own codings apply only to identity responses: unless the origin was seen to
    // send one, it encodes by itself and only what it sent can be sent.
    const own = seen.length === 0 || seen.includes('identity') ? this.#cache : [];
    const available = [...own, ...seen.filter((c) => c !== 'identity' && !own.includes(c))];
    const name = available.join(',');
    let memo = this.#memos.get(name);
    if (memo === undefined) this.#memos.set(name, (memo = new Map()));
    return { seen, available, memo };
  }
}

/** An entry's content coding as stored (`identity` when it has none). */
function codingOf(entry: Entry): string {
  const value = headerOf(entry.headers, 'content-encoding')?.trim().toLowerCase();
  return value === undefined || value === '' ? 'identity' : value;
}
