/**
 * A real nginx for field tests: a config written into a temp dir (pid, error log and temp paths
 * all there, `daemon off`), listening on free 127.0.0.1 ports, started as a child process, ready
 * once every port answers, stopped after the test file. `.ci/run` installs it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { freePort } from './http.js';
import { until } from './origin.js';

/** The nginx binary: on PATH, or Debian's /usr/sbin/nginx (not on a non-root user's PATH). */
export const NGINX = spawnSync('sh', ['-c', 'command -v nginx || echo /usr/sbin/nginx'], { encoding: 'utf8' }).stdout.trim();

/** A running nginx. */
export interface Nginx {
  /** One base URL per `server` block, in the order `servers` returned them. */
  urls: string[];
  /** The error log so far (for a failing assertion's message). */
  errors(): string;
}

const running = new Set<{ child: ChildProcess; dir: string }>();
after(async () => {
  for (const r of running) {
    if (r.child.exitCode === null && r.child.signalCode === null) {
      // SIGQUIT: graceful shutdown; nginx's workers go with the master.
      await new Promise<void>((resolve) => {
        r.child.once('exit', () => resolve());
        r.child.kill('SIGQUIT');
      });
    }
    rmSync(r.dir, { recursive: true, force: true });
  }
});

/** True when `port` on 127.0.0.1 accepts a TCP connection now. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
}

/**
 * Starts nginx with `count` server blocks: `servers(listens)` gets one `listen` address per block
 * (`127.0.0.1:PORT`) and returns the contents of the `http {}` block (upstreams and servers).
 */
export async function startNginx(count: number, servers: (listens: string[]) => string): Promise<Nginx> {
  const dir = mkdtempSync(join(tmpdir(), 'stratacache-nginx-'));
  // Workers may run as another user (nobody, when started as root): they create temp files here.
  chmodSync(dir, 0o777);
  const ports = await Promise.all(Array.from({ length: count }, () => freePort()));
  const log = join(dir, 'error.log');
  const conf = `daemon off;
worker_processes 1;
pid ${join(dir, 'nginx.pid')};
error_log ${log} warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path ${join(dir, 'client_body')};
  proxy_temp_path ${join(dir, 'proxy')};
  fastcgi_temp_path ${join(dir, 'fastcgi')};
  uwsgi_temp_path ${join(dir, 'uwsgi')};
  scgi_temp_path ${join(dir, 'scgi')};
${servers(ports.map((p) => `127.0.0.1:${p}`))}
}
`;
  writeFileSync(join(dir, 'nginx.conf'), conf);
  const child = spawn(NGINX, ['-p', dir, '-e', log, '-c', join(dir, 'nginx.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
  running.add({ child, dir });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const errors = (): string => {
    try {
      return stderr + readFileSync(log, 'utf8');
    } catch {
      return stderr;
    }
  };
  for (const port of ports) {
    if (!(await until(() => accepts(port), 10_000))) throw new Error(`nginx did not listen on 127.0.0.1:${port}: ${errors()}`);
  }
  return { urls: ports.map((p) => `http://127.0.0.1:${p}`), errors };
}
