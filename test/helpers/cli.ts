/**
 * The `stratacache` bin as a child process (through tsx), killed after the test file: its
 * startup lines give the site's URL and, with `--admin`, the admin address.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after } from 'node:test';

const CLI = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));
const TSX = import.meta.resolve('tsx');
const children = new Set<ChildProcessWithoutNullStreams>();
after(() => {
  for (const c of children) c.kill('SIGKILL');
});

/** A running `stratacache serve`. */
export interface ServeProcess {
  /** The site's base URL (no trailing slash). */
  site: string;
  /** The admin address's base URL, when started with `--admin`. */
  admin: string | undefined;
  child: ChildProcessWithoutNullStreams;
  /** Resolves with the exit status. */
  exited: Promise<number | null>;
  stderr(): string;
}

/**
 * Starts `stratacache serve --port 0 ...args` (or `--port` in `args`) with `env` over a copy of
 * this process's environment without STRATACACHE_FLUSH_TOKEN; resolves once it listens.
 */
export async function serveCli(args: string[], env: Record<string, string> = {}): Promise<ServeProcess> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, DEBUG: '', ...env };
  if (env.STRATACACHE_FLUSH_TOKEN === undefined) delete childEnv.STRATACACHE_FLUSH_TOKEN;
  const port = args.includes('--port') ? [] : ['--port', '0'];
  const child = spawn(process.execPath, ['--import', TSX, CLI, 'serve', ...port, ...args], { env: childEnv });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.on('exit', (code) => {
      children.delete(child);
      resolve(code);
    }),
  );
  const urls = await new Promise<{ site: string; admin: string | undefined }>((resolve, reject) => {
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
      const site = /listening on (http:\/\/[^/\s]+)\//.exec(stdout);
      const adm = /admin on (http:\/\/[^/\s]+)\//.exec(stdout);
      if (site !== null && (adm !== null || !args.includes('--admin'))) resolve({ site: site[1]!, admin: adm?.[1] });
    });
    void exited.then((code) => reject(new Error(`stratacache serve exited with ${code}: ${stdout} ${stderr}`)));
    setTimeout(() => reject(new Error(`no startup lines: ${stdout} ${stderr}`)), 90_000).unref();
  });
  return { ...urls, child, exited, stderr: () => stderr };
}
