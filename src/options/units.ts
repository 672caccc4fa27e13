/**
 * The units option values are given in, named by type as lru-cache does. A leaf: imports nothing.
 */

/** A duration in milliseconds. Durations are milliseconds everywhere in the API. */
export type Milliseconds = number;
/** A size in bytes. */
export type Bytes = number;
/** A whole count. */
export type Count = number;
/** A fraction between 0 and 1 (0.8 = 80 %). */
export type Fraction = number;
