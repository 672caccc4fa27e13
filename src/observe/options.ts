/**
 * Options of the metrics (`options.metrics`) and their resolver. Their defaults are in
 * `DEFAULTS` (`options/defaults.ts`).
 */
import { fail, knownOptions, objectOption } from '../options/validate.js';

/** The part of a prom-client `Registry` stratacache uses (prom-client itself is never imported). */
export interface MetricsRegistry {
  registerMetric(metric: unknown): void;
}

/** Options of the metrics. */
export interface MetricsOptions {
  /**
   * A prom-client `Registry` (or anything with `registerMetric`) to register every metric on.
   * @default undefined (none: only `cache.metricsHandler()`)
   */
  registry?: MetricsRegistry | undefined;
}

/**
 * Validates `options.metrics`; returns its registry. `defaults` is `DEFAULTS.metrics`.
 * @throws TypeError naming `options.metrics.<field>` and the value it got.
 */
export function resolveMetricsOptions(value: unknown, defaults: object): MetricsRegistry | undefined {
  objectOption('metrics', value);
  knownOptions('metrics', value, defaults);
  const registry = (value as MetricsOptions).registry;
  if (registry !== undefined && (registry === null || typeof (registry as { registerMetric?: unknown }).registerMetric !== 'function')) {
    fail(TypeError, 'metrics.registry', 'a prom-client Registry (an object with registerMetric)', registry);
  }
  return registry;
}
