/**
 * What a command may touch of its process, passed in so that commands run the same from the bin
 * and from tests: output lines, the environment, the working directory, termination signals.
 */
export interface Io {
  /** Writes one line (or several) to standard output. */
  out(text: string): void;
  /** Writes one line (or several) to standard error. */
  err(text: string): void;
  /** Writes without a newline (progress bars); only meaningful when {@link Io.tty} is true. */
  raw(text: string): void;
  /** True when standard output is a terminal (progress bars instead of periodic lines). */
  tty: boolean;
  env: NodeJS.ProcessEnv;
  cwd: string;
  /**
   * Calls `listener` on SIGTERM, SIGINT and SIGHUP (with the signal's name), and when the parent
   * process goes away ('parent exited'): `npx` and some supervisors exit on SIGTERM without passing
   * it on, which would otherwise leave this process listening as an orphan.
   */
  onSignal(listener: (signal: string) => void): void;
}

/** The real process. */
export function processIo(): Io {
  return {
    out: (text) => void process.stdout.write(`${text}\n`),
    err: (text) => void process.stderr.write(`${text}\n`),
    raw: (text) => void process.stdout.write(text),
    tty: process.stdout.isTTY === true,
    env: process.env,
    cwd: process.cwd(),
    onSignal(listener) {
      for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(signal, () => listener(signal));
      // Re-parenting (to init or a subreaper) is how a process learns its parent died.
      const parent = process.ppid;
      const watch = setInterval(() => {
        if (process.ppid === parent) return;
        clearInterval(watch);
        listener('parent exited');
      }, 500);
      watch.unref();
    },
  };
}
