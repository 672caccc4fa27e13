/**
 * Runs schedules on every core: one worker thread per core (at most `workers`), each playing its
 * share of the seeds, `concurrency` at a time, and reporting each failure as text (a schedule's
 * record holds buffers and functions: the worker describes it). One process's event loop is the
 * limit otherwise: a schedule costs tens of ms of CPU (creating its cache, its server, its
 * requests), and a 2-core machine runs twice as many in the same minute with two threads.
 */
import { availableParallelism } from 'node:os';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { describeFailure } from './report.js';
import type { Exclusions } from './plan.js';
import { runMany } from './run.js';

/** One failed schedule, as the worker that ran it describes it. */
export interface FailureReport {
  seed: number;
  rules: string[];
  text: string;
}

export interface PoolRun {
  base: number;
  count: number;
  /** Schedules at once per worker. */
  concurrency: number;
  replay: boolean;
  exclusions: Exclusions;
  /** Worker threads (default: the machine's parallelism, at most 4). */
  workers?: number;
  /** Called for each schedule that ends (progress). */
  onDone?: (failed: FailureReport | undefined) => void;
}

interface Slice {
  base: number;
  count: number;
  stride: number;
  concurrency: number;
  replay: boolean;
  exclusions: Exclusions;
}

type Message = { type: 'done'; failure?: FailureReport } | { type: 'end' };

/**
 * A worker thread does not inherit the `--import tsx` loader of its process: it registers tsx
 * itself, then loads this module, whose last line starts its share of the work.
 */
const BOOT = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((tsx) => { tsx.register(); return import(${JSON.stringify(import.meta.url)}); })`;

/** Runs the schedules on worker threads; resolves to the failures. */
export async function runPool(run: PoolRun): Promise<FailureReport[]> {
  const threads = Math.max(1, Math.min(run.workers ?? Math.min(4, availableParallelism()), run.count));
  const failures: FailureReport[] = [];
  await Promise.all(
    Array.from({ length: threads }, (_, w) => {
      // Worker w plays seeds base + w, base + w + threads, ... (a replay plays the same seed).
      const count = Math.floor(run.count / threads) + (w < run.count % threads ? 1 : 0);
      const slice: Slice = { base: run.replay ? run.base : run.base + w, count, stride: run.replay ? 0 : threads, concurrency: run.concurrency, replay: run.replay, exclusions: run.exclusions };
      return new Promise<void>((resolve, reject) => {
        const worker = new Worker(BOOT, { eval: true, workerData: slice });
        worker.on('message', (m: Message) => {
          if (m.type !== 'done') return;
          if (m.failure !== undefined) failures.push(m.failure);
          run.onDone?.(m.failure);
        });
        worker.on('error', reject);
        worker.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`schedule worker ${w} exited with ${code}`))));
      });
    }),
  );
  return failures.sort((a, b) => a.seed - b.seed);
}

/** A worker's body: plays its slice of seeds and reports each schedule. */
async function work(slice: Slice, port: NonNullable<typeof parentPort>): Promise<void> {
  await runMany({
    base: slice.base,
    count: slice.count,
    concurrency: slice.concurrency,
    replay: slice.replay,
    stride: slice.stride,
    exclusions: slice.exclusions,
    onResult: (result) => {
      const failure = result.violations.length === 0 ? undefined : { seed: result.seed, rules: [...new Set(result.violations.map((v) => v.rule))], text: describeFailure(result) };
      port.postMessage({ type: 'done', failure } satisfies Message);
    },
  });
}

if (!isMainThread && parentPort !== null && (workerData as Slice | undefined)?.stride !== undefined) await work(workerData as Slice, parentPort);
