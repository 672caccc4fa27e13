/**
 * The `stratacache` bin as a child process, as an operator runs it: {@link startCli} spawns it
 * (with `DEBUG` cleared, so what it prints is what an operator sees), collects stdout and stderr,
 * and kills whatever is still running after the test file.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after } from 'node:test';

export const CLI = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));
export const TSX = import.meta.resolve('tsx');

const children = new Set<ChildProcessWithoutNullStreams>();
after(() => {
  for (const c of children) c.kill('SIGKILL');
});

/** What a finished bin printed. */
export interface Exited {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Options of {@link startCli}. */
export interface CliOptions {
  cwd?: string;
  env?: Record<string, string>;
}

/** Starts the bin; `exited` resolves with the status and everything it printed. */
export function startCli(args: string[], options: CliOptions = {}) {
  const child = spawn(process.execPath, ['--import', TSX, CLI, ...args], { cwd: options.cwd ?? process.cwd(), env: { ...process.env, DEBUG: '', ...options.env } });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<Exited>((resolve) =>
    child.on('exit', (code) => {
      children.delete(child);
      resolve({ code, stdout, stderr });
    }),
  );
  /** Resolves with the first match of `pattern` in stdout (or stderr with `stream: 'stderr'`). */
  const waitFor = (pattern: RegExp, ms = 30_000, stream: 'stdout' | 'stderr' = 'stdout'): Promise<RegExpExecArray> =>
    new Promise((resolve, reject) => {
      const source = stream === 'stdout' ? child.stdout : child.stderr;
      const check = (): void => {
        const m = pattern.exec(stream === 'stdout' ? stdout : stderr);
        if (m !== null) {
          source.off('data', check);
          resolve(m);
        }
      };
      source.on('data', check);
      check();
      void exited.then(() => reject(new Error(`exited before ${pattern}: ${stdout} ${stderr}`)));
      setTimeout(() => reject(new Error(`no ${pattern} within ${ms} ms: ${stdout} ${stderr}`)), ms).unref();
    });
  return { child, exited, waitFor, output: () => ({ stdout, stderr }) };
}

/** Runs the bin to its end. */
export const runCli = (args: string[], options?: CliOptions): Promise<Exited> => startCli(args, options).exited;

/** A `serve` child on a free port; resolves once it listens, with its URL and startup line. */
export async function serveCli(args: string[], options?: CliOptions) {
  const s = startCli(['serve', '--port', '0', ...args], options);
  const m = await s.waitFor(/listening on (http:\/\/[^/\s]+)\//);
  return { ...s, url: m[1]!, line: m[0] };
}
