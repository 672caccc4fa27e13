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
  /** Calls `listener` on SIGTERM and SIGINT (with the signal's name). */
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
      process.on('SIGTERM', () => listener('SIGTERM'));
      process.on('SIGINT', () => listener('SIGINT'));
    },
  };
}
