#!/usr/bin/env node
/**
 * The `stratacache` bin: `serve` (the caching reverse proxy), `flush`, `prime`, `stats`, `explain` and `demo`.
 * Each command lives in `cli/`; this file only dispatches. A user mistake (bad flag, bad config
 * field, port in use) prints one line and exits 1; nothing prints a stack for it.
 */
import { readFileSync, realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { processIo, type Io } from './cli/io.js';
import { UsageError } from './cli/units.js';

const USAGE = `usage: stratacache <command> [options]

A layered HTTP cache in front of any upstream, and the tools to run it.

Commands:
  serve    run the caching reverse proxy in front of an upstream (the default command:
           'stratacache' alone serves the stratacache.config.* file of the folder)
  flush    invalidate paths or tags on a running node (and refetch pages)
  prime    warm a node from a file of URLs or a sitemap
  stats    show a node's hit ratio, entries, renders saved, peers
  explain  why one page is (not) cached on a node: key, variants, tiers, rule, invalidations
  demo     a 3-node cluster in front of a slow origin: traffic, a flush, an outage, in numbers

Run 'stratacache <command> --help' for a command's options.
  -h, --help     this text
  --version      the version`;

type Command = (argv: readonly string[], io: Io) => Promise<number>;

const COMMANDS: Record<string, () => Promise<Command>> = {
  serve: async () => (await import('./cli/serve.js')).runServe,
  flush: async () => (await import('./cli/flush.js')).runFlush,
  prime: async () => (await import('./cli/prime.js')).runPrime,
  stats: async () => (await import('./cli/stats.js')).runStats,
  explain: async () => (await import('./cli/explain.js')).runExplain,
  demo: async () => (await import('./cli/demo.js')).runDemo,
};

function version(): string {
  // ../package.json from src/cli.ts and from dist/cli.js alike.
  return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

/** Runs the bin with `argv` (without node and the script); resolves with the exit status. */
export async function run(argv: readonly string[], io: Io): Promise<number> {
  const [first, ...rest] = argv;
  // `stratacache` alone in a folder with a config file serves it; elsewhere it shows the usage.
  if (first === undefined && (await import('./cli/config.js')).findConfigFile(undefined, io.cwd) !== undefined) return run(['serve'], io);
  if (first === undefined || first === '-h' || first === '--help' || first === 'help') {
    io.out(USAGE);
    return first === undefined ? 1 : 0;
  }
  if (first === '--version' || first === '-v') {
    io.out(version());
    return 0;
  }
  // `stratacache --upstream URL ...` (no command) is `serve`, as before commands existed.
  const command = COMMANDS[first] ?? (first.startsWith('-') ? COMMANDS.serve : undefined);
  if (command === undefined) {
    io.err(`stratacache: unknown command '${first}' (commands: ${Object.keys(COMMANDS).join(', ')}; see stratacache --help)`);
    return 1;
  }
  try {
    return await (await command())(COMMANDS[first] === undefined ? argv : rest, io);
  } catch (error) {
    if (error instanceof UsageError) {
      io.err(`stratacache: ${error.message}`);
      return 1;
    }
    throw error;
  }
}

/** True when this module is the program (also through npm's bin symlink), not an import. */
function isMain(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(script)).href;
  } catch {
    return false;
  }
}

if (isMain()) {
  run(process.argv.slice(2), processIo()).then(
    (code) => {
      // Exit explicitly: idle keep-alive sockets or a stray timer must not keep a stopped server's
      // process alive (under npx the parent waits for it).
      process.exitCode = code;
      setImmediate(() => process.exit(code));
    },
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
