/**
 * The part of autocannon's programmatic API bench/hit.ts uses (autocannon ships no types and
 * `@types/autocannon` is not a dependency; this keeps the bench type-checked under strict).
 */
declare module 'autocannon' {
  /** Options of one autocannon run. Durations in seconds. */
  interface AutocannonOptions {
    url: string;
    connections?: number;
    pipelining?: number;
    duration?: number;
    /** Requests each connection sends in turn (paths relative to `url`). */
    requests?: Array<{ path: string }>;
  }
  /** Latency percentiles in milliseconds. */
  interface Histogram {
    average: number;
    p50: number;
    p99: number;
    total: number;
  }
  /** The result of one run. `duration` is in seconds; `throughput` in bytes. */
  interface AutocannonResult {
    requests: Histogram;
    latency: Histogram;
    throughput: Histogram;
    duration: number;
    errors: number;
    timeouts: number;
    non2xx: number;
  }
  function autocannon(options: AutocannonOptions): Promise<AutocannonResult>;
  export default autocannon;
}
