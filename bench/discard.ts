/**
 * What the in-process benchmarks (`hit-cost.ts`, `adapter-cost.ts`) drive handlers with: real
 * IncomingMessage/ServerResponse objects over a socket that discards what it is given, so no
 * kernel, no load generator and no other process is in the measurement.
 */
import { IncomingMessage, ServerResponse } from 'node:http';
import { Duplex } from 'node:stream';
import { setImmediate as nextLoop } from 'node:timers/promises';

/** Accepts and discards writes, in one call for headers and body like a real socket's writev. */
export class DiscardSocket extends Duplex {
  readonly remoteAddress = '127.0.0.1';
  readonly remotePort = 0;
  readonly encrypted = false;
  bytes = 0;
  /** What was written, kept only when asked (to read a response's header block). */
  readonly kept: Buffer[] | undefined;
  constructor(keep = false) {
    // Never full: without an http.Server, nothing would relay the socket's 'drain' to the response.
    super({ writableHighWaterMark: 1 << 30 });
    this.kept = keep ? [] : undefined;
  }
  override _read(): void {}
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (error?: Error | null) => void): void {
    this.bytes += chunk.length;
    this.kept?.push(chunk);
    cb();
  }
  override _writev(chunks: Array<{ chunk: Buffer }>, cb: (error?: Error | null) => void): void {
    for (const c of chunks) {
      this.bytes += c.chunk.length;
      this.kept?.push(c.chunk);
    }
    cb();
  }
  setTimeout(): this {
    return this;
  }
}

/** One request shaped like wrk's (`GET /`, a Host header, no body) and its response on a discarding socket. */
export function exchange(keep = false): { req: IncomingMessage; res: ServerResponse; socket: DiscardSocket } {
  const socket = new DiscardSocket(keep);
  const req = new IncomingMessage(socket as never);
  req.method = 'GET';
  req.url = '/';
  req.httpVersion = '1.1';
  req.httpVersionMajor = 1;
  req.httpVersionMinor = 1;
  req.rawHeaders = ['Host', '127.0.0.1:8080'];
  req.headers = { host: '127.0.0.1:8080' };
  req.complete = true;
  req.push(null);
  const res = new ServerResponse(req);
  res.assignSocket(socket as never);
  return { req, res, socket };
}

/**
 * Runs `count` requests through `handler` on discarding sockets (each for `urlOf(i)`, else `/`);
 * returns the process CPU µs spent. Every 256 requests it yields to the event loop so finish and
 * close callbacks run now and then, as a server under traffic would.
 */
export async function cpuBatch(handler: (req: IncomingMessage, res: ServerResponse) => unknown, count: number, urlOf?: (i: number) => string): Promise<number> {
  const start = process.cpuUsage();
  for (let i = 0; i < count; i++) {
    const { req, res } = exchange();
    if (urlOf !== undefined) req.url = urlOf(i);
    handler(req, res);
    if ((i & 255) === 255) await nextLoop();
  }
  await nextLoop();
  const used = process.cpuUsage(start);
  return used.user + used.system;
}
