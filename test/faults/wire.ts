/**
 * Fault-suite helpers: a request written byte for byte on a raw socket (absolute-form targets,
 * invalid Host values, bodies on GET: what an HTTP client library refuses to send), and its reply.
 */
import net from 'node:net';

/** A parsed reply: status, lower-cased headers, body (Content-Length or close-delimited). */
export interface WireReply {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Writes `head` (request line and headers, without the blank line) and `body`, reads the reply. */
export function rawRequest(port: number, head: string, body = ''): Promise<WireReply> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(`${head}\r\nConnection: close\r\n\r\n${body}`));
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('end', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      const split = text.indexOf('\r\n\r\n');
      const lines = text.slice(0, split).split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of lines.slice(1)) {
        const colon = line.indexOf(':');
        headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
      }
      let rest = text.slice(split + 4);
      if (headers['transfer-encoding'] === 'chunked') rest = dechunk(rest);
      resolve({ status: Number(lines[0]!.split(' ')[1]), headers, body: rest });
    });
  });
}

function dechunk(text: string): string {
  let out = '';
  let at = 0;
  for (;;) {
    const eol = text.indexOf('\r\n', at);
    if (eol === -1) return out;
    const size = parseInt(text.slice(at, eol), 16);
    if (!(size > 0)) return out;
    out += text.slice(eol + 2, eol + 2 + size);
    at = eol + 2 + size + 2;
  }
}
