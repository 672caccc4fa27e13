/**
 * A tiny real DNS server for tests (node:dgram on 127.0.0.1, a free port): answers A, AAAA and SRV
 * queries (RFC 1035 §4, RFC 2782) from a table the test changes while it runs. A name missing from
 * the table is NXDOMAIN; a name with no record of the asked type is an empty NOERROR answer.
 * `failing` makes it answer SERVFAIL, `silent` makes it drop queries (the client times out).
 * Point a resolver at it with `servers: [dns.address]`.
 */
import { createSocket, type RemoteInfo } from 'node:dgram';
import { after } from 'node:test';

/** One record of the table. */
export type DnsRecord = { type: 'A'; address: string } | { type: 'AAAA'; address: string } | { type: 'SRV'; target: string; port: number; priority?: number; weight?: number };

/** A running server. */
export interface DnsServer {
  /** `127.0.0.1:<port>`, as `Resolver.setServers` and `peers.discover.servers` take it. */
  readonly address: string;
  /** Replaces the records of `name` (an empty list: the name exists, no records). */
  set(name: string, records: DnsRecord[]): void;
  /** Removes `name` (NXDOMAIN from now on). */
  remove(name: string): void;
  /** `'answer'` (default), `'failing'` (SERVFAIL), `'silent'` (no reply at all). */
  mode: 'answer' | 'failing' | 'silent';
  /** Queries received, by `<type> <name>`. */
  readonly queries: string[];
  close(): Promise<void>;
}

const TYPES: Record<number, DnsRecord['type']> = { 1: 'A', 28: 'AAAA', 33: 'SRV' };
const CODES = { A: 1, AAAA: 28, SRV: 33 } as const;

/** The name at `offset` (uncompressed: queries carry no pointers) and the offset after it. */
function readName(msg: Buffer, offset: number): { name: string; end: number } {
  const labels: string[] = [];
  let at = offset;
  for (let len = msg[at]!; len !== 0; len = msg[at]!) {
    labels.push(msg.toString('latin1', at + 1, at + 1 + len));
    at += 1 + len;
  }
  return { name: labels.join('.').toLowerCase(), end: at + 1 };
}

function encodeName(name: string): Buffer {
  const parts = name.replace(/\.$/, '').split('.').filter(Boolean);
  return Buffer.concat([...parts.map((p) => Buffer.concat([Buffer.from([p.length]), Buffer.from(p, 'latin1')])), Buffer.from([0])]);
}

function ipv6Bytes(address: string): Buffer {
  const [head, tail] = address.includes('::') ? address.split('::') : [address, undefined];
  const left = head === '' ? [] : head!.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = [...left, ...Array(8 - left.length - right.length).fill('0'), ...right];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g as string, 16), i * 2));
  return out;
}

function rdata(record: DnsRecord): Buffer {
  if (record.type === 'A') return Buffer.from(record.address.split('.').map(Number));
  if (record.type === 'AAAA') return ipv6Bytes(record.address);
  const head = Buffer.alloc(6);
  head.writeUInt16BE(record.priority ?? 10, 0);
  head.writeUInt16BE(record.weight ?? 10, 2);
  head.writeUInt16BE(record.port, 4);
  return Buffer.concat([head, encodeName(record.target)]);
}

/** The reply to one query, or undefined to drop it. */
function reply(query: Buffer, table: Map<string, DnsRecord[]>, mode: DnsServer['mode'], seen: string[]): Buffer | undefined {
  if (query.length < 12 || mode === 'silent') return undefined;
  const { name, end } = readName(query, 12);
  const qtype = query.readUInt16BE(end);
  const question = query.subarray(12, end + 4);
  const type = TYPES[qtype];
  seen.push(`${type ?? qtype} ${name}`);
  const records = table.get(name);
  const rcode = mode === 'failing' ? 2 : records === undefined ? 3 : 0;
  const answers = rcode === 0 && type !== undefined ? records!.filter((r) => r.type === type) : [];
  const header = Buffer.alloc(12);
  header.writeUInt16BE(query.readUInt16BE(0), 0); // id
  header.writeUInt16BE(0x8000 | 0x0400 | (query.readUInt16BE(2) & 0x0100) | 0x0080 | rcode, 2); // QR AA RD RA rcode
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(answers.length, 6);
  const rrs = answers.map((r) => {
    const data = rdata(r);
    const fixed = Buffer.alloc(12);
    fixed.writeUInt16BE(0xc00c, 0); // the name: a pointer to the question's
    fixed.writeUInt16BE(CODES[r.type], 2);
    fixed.writeUInt16BE(1, 4); // IN
    fixed.writeUInt32BE(0, 6); // TTL 0: nothing cached between reads
    fixed.writeUInt16BE(data.length, 10);
    return Buffer.concat([fixed, data]);
  });
  return Buffer.concat([header, question, ...rrs]);
}

/** Starts a server on a free loopback port; closed after the test file at the latest. */
export async function startDns(): Promise<DnsServer> {
  const socket = createSocket('udp4');
  const table = new Map<string, DnsRecord[]>();
  const queries: string[] = [];
  let closed = false;
  const server: DnsServer = {
    address: '',
    mode: 'answer',
    queries,
    set: (name, records) => void table.set(name.toLowerCase().replace(/\.$/, ''), records),
    remove: (name) => void table.delete(name.toLowerCase().replace(/\.$/, '')),
    close: () => (closed ? Promise.resolve() : ((closed = true), new Promise<void>((resolve) => socket.close(() => resolve())))),
  };
  socket.on('message', (msg: Buffer, from: RemoteInfo) => {
    let out: Buffer | undefined;
    try {
      out = reply(msg, table, server.mode, queries);
    } catch {
      out = undefined; // a malformed query: dropped
    }
    if (out !== undefined && !closed) socket.send(out, from.port, from.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  (server as { address: string }).address = `127.0.0.1:${socket.address().port}`;
  after(() => server.close());
  return server;
}
