/**
 * One schedule's clock: every event (a request sent, a render begun, an invalidation issued or
 * completed, ...) gets a stamp. `seq` orders events exactly (the process runs one callback at a
 * time); `ms` (monotonic) measures durations. And the process's lag: on a loaded machine the
 * process is not scheduled for a while, every timer (the cache's too) fires late, so a duration
 * bound is judged against the lag measured over that same span.
 */
import { performance } from 'node:perf_hooks';

export interface Stamp {
  seq: number;
  ms: number;
}

export class Clock {
  #seq = 0;

  now(): Stamp {
    return { seq: ++this.#seq, ms: performance.now() };
  }
}

/** How often the lag meter ticks (ms). */
const TICK = 10;

/**
 * Measures how late the event loop runs: a ticker every {@link TICK} ms; the lag over a span is
 * the sum of how much later than due each tick in it ran. Shared by every schedule of the
 * process (they share its event loop); runs while someone holds it.
 */
export class LagMeter {
  static #shared: LagMeter | undefined;
  static #holders = 0;
  readonly #ticks: { at: number; late: number }[] = [];
  readonly #timer: NodeJS.Timeout;

  private constructor() {
    let last = performance.now();
    this.#timer = setInterval(() => {
      const now = performance.now();
      const late = Math.max(0, now - last - TICK);
      last = now;
      if (late > 1) this.#ticks.push({ at: now, late });
      // Keep about a minute.
      while (this.#ticks.length > 0 && this.#ticks[0]!.at < now - 60_000) this.#ticks.shift();
    }, TICK);
    this.#timer.unref();
  }

  /** The process's meter; call {@link release} when done. */
  static acquire(): LagMeter {
    LagMeter.#holders++;
    return (LagMeter.#shared ??= new LagMeter());
  }

  static release(): void {
    if (--LagMeter.#holders > 0 || LagMeter.#shared === undefined) return;
    clearInterval(LagMeter.#shared.#timer);
    LagMeter.#shared = undefined;
  }

  /**
   * Lag (ms) between `from` and `to` (performance.now() times): how much later than due the
   * ticks in that span ran, summed. On a starved process every step of a request (socket reads,
   * the handler, timers) waits like the ticks do, so this is the time the span did not have.
   * A request that never ends is still caught: its client gives up once the bound plus this lag
   * has passed, which, with the lag growing slower than time, comes.
   */
  lag(from: number, to: number): number {
    let sum = 0;
    for (let i = this.#ticks.length - 1; i >= 0; i--) {
      const t = this.#ticks[i]!;
      if (t.at < from) break;
      if (t.at <= to + TICK) sum += t.late;
    }
    return sum;
  }
}
