/**
 * What the engine writes, as the WHATWG Response a Fetch handler's caller receives: a hit
 * (status, flat header list, body buffer) at once, or whatever the engine and the handler write
 * on a Node response, as one buffer or as a stream.
 */
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { ERROR_TEXT, type HitSink } from '../serve.js';

/** Statuses whose Response has no body (RFC 9110 §6.4.1). */
const NO_BODY = new Set([101, 103, 204, 205, 304]);

/** The client queue of a streamed body: past it, the handler waits for the client to read. */
const HIGH_WATER_MARK = 64 * 1024;

/** A hit written by the engine (status, flat header list, body) as a Response over its body buffer. */
export class HitResponse implements HitSink {
  response: Response | undefined;
  readonly #head: boolean;
  #status = 200;
  #headers: Record<string, string> = {};

  constructor(head: boolean) {
    this.#head = head;
  }

  writeHead(status: number, flat: Array<string | string[]>): void {
    this.#status = status;
    // Repeated names arrive grouped; joined as RFC 9110 §5.3 allows (Set-Cookie is never stored).
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const value = flat[i + 1]!;
      this.#headers[flat[i] as string] = typeof value === 'string' ? value : value.join(', ');
    }
  }

  end(body?: Buffer): void {
    const empty = this.#head || NO_BODY.has(this.#status) || body === undefined;
    this.response = new Response(empty ? null : body, { status: this.#status, headers: this.#headers });
  }
}

/**
 * Turns what the engine writes on a synthetic response into the client's Response. A response
 * written at once (a hit, a 304, an error) becomes a Response over one buffer; one that is still
 * being written when the current tick ends (a render) becomes a Response over a stream fed as
 * the handler writes, which tells the writer to wait (`write` returns false, then `drain`) while
 * the client has not read what is queued. A client that cancels the body destroys the response,
 * so a render cut short is never stored.
 */
export class ResponseBridge {
  readonly response: Promise<Response>;
  #resolve!: (response: Response) => void;
  #res: ServerResponse;
  #head: boolean;
  #status = 200;
  #headers: Record<string, string> | Array<[string, string]> = {};
  #chunks: Uint8Array[] = [];
  #stream: ReadableStreamDefaultController<Uint8Array> | undefined;
  #ended = false;
  #resolved = false;
  #waiting = false;

  constructor(res: ServerResponse, head: boolean) {
    this.response = new Promise((resolve) => (this.#resolve = resolve));
    this.#res = res;
    this.#head = head;
    const bridge = this;
    const writeHead = res.writeHead;
    const write = res.write;
    const end = res.end;
    res.writeHead = function (this: ServerResponse, code: number, ...rest: unknown[]) {
      // Read before Node's writeHead, which may copy the passed headers into the set ones.
      if (!this.headersSent) bridge.#onHead(code, typeof rest[0] === 'string' ? rest[1] : rest[0]);
      return (writeHead as (...a: unknown[]) => ServerResponse).call(this, code, ...rest);
    } as ServerResponse['writeHead'];
    res.write = function (this: ServerResponse, chunk: unknown, ...rest: unknown[]) {
      if (!this.headersSent) this.writeHead(this.statusCode);
      (write as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
      return bridge.#push(chunk, rest[0]);
    } as ServerResponse['write'];
    res.end = function (this: ServerResponse, chunk?: unknown, ...rest: unknown[]) {
      if (!this.headersSent) this.writeHead(this.statusCode);
      if (chunk !== undefined && chunk !== null && typeof chunk !== 'function') bridge.#push(chunk, rest[0]);
      bridge.#end();
      return (end as (...a: unknown[]) => ServerResponse).call(this, chunk, ...rest);
    } as ServerResponse['end'];
    res.once('close', () => {
      // Destroyed before it ended (a handler error after the first byte): the client's body fails.
      if (!this.#ended) {
        this.#ended = true;
        if (!this.#resolved) this.#send(new Response(ERROR_TEXT[500], { status: 500 }));
        else this.#stream?.error(new Error('response cut off'));
      }
    });
  }

  /**
   * Headers are going out: those set earlier, replaced by those passed to writeHead with the same
   * name (as Node does); the Response is made at the end of the tick (see the class comment).
   */
  #onHead(status: number, passed: unknown): void {
    this.#status = status;
    const merged = new Map<string, unknown>();
    const set = this.#res.getHeaders() as OutgoingHttpHeaders;
    for (const name of Object.keys(set)) merged.set(name, set[name]);
    if (Array.isArray(passed)) {
      const pairs: Array<[string, unknown]> = [];
      if (passed.length > 0 && Array.isArray(passed[0])) pairs.push(...(passed as Array<[string, unknown]>));
      else for (let i = 0; i + 1 < passed.length; i += 2) pairs.push([String(passed[i]), passed[i + 1]]);
      for (const [name] of pairs) merged.delete(name.toLowerCase());
      for (const [name, value] of pairs) {
        const key = name.toLowerCase();
        const prev = merged.get(key);
        merged.set(key, prev === undefined ? value : [prev, value].flat());
      }
    } else if (passed !== undefined && passed !== null) {
      for (const [name, value] of Object.entries(passed as OutgoingHttpHeaders)) if (value !== undefined) merged.set(name.toLowerCase(), value);
    }
    // A record unless a name repeats (Set-Cookie): @hono/node-server writes a record as it is.
    let record: Record<string, string> | undefined = {};
    for (const [name, value] of merged) {
      if (value === undefined) continue;
      if (!Array.isArray(value)) record[name] = String(value);
      else if (value.length === 1) record[name] = String(value[0]);
      else {
        record = undefined;
        break;
      }
    }
    if (record === undefined) {
      const pairs: Array<[string, string]> = [];
      for (const [name, value] of merged) for (const v of [value ?? []].flat()) pairs.push([name, String(v)]);
      this.#headers = pairs;
    } else this.#headers = record;
    queueMicrotask(() => {
      if (!this.#resolved) this.#open();
    });
  }

  #push(chunk: unknown, encoding: unknown): boolean {
    if (this.#ended || this.#head || chunk === undefined || chunk === null) return true;
    const buf = typeof chunk === 'string' ? Buffer.from(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8') : (chunk as Uint8Array);
    if (buf.byteLength === 0) return true;
    if (this.#stream === undefined) {
      this.#chunks.push(buf);
      return true;
    }
    this.#stream.enqueue(buf);
    if ((this.#stream.desiredSize ?? 1) > 0) return true;
    this.#waiting = true;
    return false;
  }

  #end(): void {
    if (this.#ended) return;
    this.#ended = true;
    if (this.#stream !== undefined) {
      this.#stream.close();
      return;
    }
    const body = this.#chunks.length === 0 ? null : this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks);
    this.#chunks = [];
    this.#send(new Response(this.#head || NO_BODY.has(this.#status) ? null : body, { status: this.#status, headers: this.#headers }));
  }

  /** Headers sent and the body not finished within the tick: stream it. */
  #open(): void {
    if (this.#head || NO_BODY.has(this.#status)) {
      this.#send(new Response(null, { status: this.#status, headers: this.#headers }));
      return;
    }
    const queued = this.#chunks;
    this.#chunks = [];
    const stream = new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          this.#stream = controller;
          for (const chunk of queued) controller.enqueue(chunk);
        },
        pull: () => {
          if (!this.#waiting) return;
          this.#waiting = false;
          this.#res.emit('drain');
        },
        cancel: () => {
          // The client went away: the render is cut short, never stored.
          if (!this.#ended) this.#res.destroy();
        },
      },
      new ByteLengthQueuingStrategy({ highWaterMark: HIGH_WATER_MARK }),
    );
    this.#send(new Response(stream, { status: this.#status, headers: this.#headers }));
  }

  /** The Response is made (a hit or an error written at once, or headers of a stream). */
  get settled(): boolean {
    return this.#resolved;
  }

  #send(response: Response): void {
    if (this.#resolved) return;
    this.#resolved = true;
    this.#resolve(response);
  }
}
