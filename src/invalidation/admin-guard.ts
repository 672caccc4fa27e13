/**
 * The one guard of every admin route (the flush endpoint, `PURGE`, the stats endpoint, the
 * operator console). A request is let through when, in this order:
 *
 * 1. its `Host` is an IP literal, `localhost`, or one of `flush.hosts` (a browser tricked by DNS
 *    rebinding sends the attacker's name as Host: it is never an admin host);
 * 2. its `Origin`, when it sends one, is the origin of that Host (a page elsewhere cannot drive
 *    an operator's browser to flush);
 * 3. its socket address is in `flush.allowedClients`;
 * 4. it did not come through a proxy, or it carries the token: a request with `Forwarded`,
 *    `X-Forwarded-For`, `X-Real-IP` or `Via`, or from an address in `flush.trustProxy`, is
 *    some other client's request relayed by the proxy, so the proxy's (often loopback) address
 *    says nothing about who sent it;
 * 5. when `flush.token` is set, it carries it (`Authorization: Bearer`, or as the password of
 *    `Authorization: Basic`).
 *
 * Every refusal is a 403 with a short reason that says which rule refused it.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { BlockList, isIP } from 'node:net';
import createDebug from 'debug';

const debug = createDebug('stratacache:flush');

/** A refused or malformed request: the status and a short reason for the body. */
export interface FlushRefusal {
  status: number;
  reason: string;
  /** The client may come in but gave no valid token: a browser can be asked for it (401 Basic). */
  challenge?: boolean;
}

/** What the guard is built from (the resolved `flush` options). */
export interface AdminGuardOptions {
  readonly allowedClients: readonly string[];
  readonly trustProxy: readonly string[];
  readonly hosts: readonly string[];
  readonly token: string | undefined;
}

/** Request headers a proxy adds (RFC 7239 `Forwarded`, RFC 9110 §7.6.3 `Via`, and the de facto two). */
export const PROXY_HEADERS = ['forwarded', 'x-forwarded-for', 'x-real-ip', 'via'] as const;

/** A predicate on client addresses built from an address/CIDR list (IPv4-mapped IPv6 counts as IPv4). */
export function clientFilter(allowed: readonly string[]): (address: string | undefined) => boolean {
  const list = new BlockList();
  for (const item of allowed) {
    const slash = item.indexOf('/');
    const address = unmap(slash === -1 ? item : item.slice(0, slash));
    const type = isIP(address) === 4 ? 'ipv4' : 'ipv6';
    if (slash === -1) list.addAddress(address, type);
    else {
      let prefix = Number(item.slice(slash + 1));
      // '::ffff:10.0.0.0/104' is the IPv4 range 10.0.0.0/8.
      if (type === 'ipv4' && address !== item.slice(0, slash)) prefix -= 96;
      list.addSubnet(address, Math.max(0, prefix), type);
    }
  }
  return (raw) => {
    if (raw === undefined) return false;
    const address = unmap(raw);
    const family = isIP(address);
    if (family === 0) return false;
    return list.check(address, family === 4 ? 'ipv4' : 'ipv6');
  };
}

/** `::ffff:a.b.c.d` (IPv4-mapped IPv6, RFC 4291 §2.5.5.2) as `a.b.c.d`; anything else unchanged. */
function unmap(address: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return m !== null && isIP(m[1]!) === 4 ? m[1]! : address;
}

/**
 * The host name of a Host header value: lower case, without the port, the brackets of an IPv6
 * literal or a trailing dot. Undefined when the value has no name (empty).
 */
export function hostName(host: string): string | undefined {
  let name = host.trim().toLowerCase();
  if (name.startsWith('[')) {
    const close = name.indexOf(']');
    name = close === -1 ? name.slice(1) : name.slice(1, close);
  } else {
    const colon = name.indexOf(':');
    if (colon !== -1) name = name.slice(0, colon);
    if (name.endsWith('.')) name = name.slice(0, -1);
  }
  return name === '' ? undefined : name;
}

/**
 * True when `host` (a Host header value) names an admin host: an IP literal, `localhost`, or one
 * of `hosts` (lower-case names without port). No Host at all (HTTP/1.0) is no browser's request.
 */
export function isAdminHost(host: string | undefined, hosts: ReadonlySet<string>): boolean {
  if (host === undefined) return true;
  const name = hostName(host);
  return name !== undefined && (isIP(name) !== 0 || name === 'localhost' || hosts.has(name));
}

/** True without an `Origin` header (same-origin GETs omit it) or when it names the request's own Host. */
function sameOrigin(origin: string | undefined, host: string | undefined): boolean {
  if (origin === undefined) return true;
  try {
    return host !== undefined && new URL(origin).host === new URL(`http://${host}`).host;
  } catch {
    return false;
  }
}

/** The first proxy header a request carries, or undefined. */
function proxyHeader(headers: IncomingMessage['headers']): string | undefined {
  for (const name of PROXY_HEADERS) if (headers[name] !== undefined) return name;
  return undefined;
}

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/** The token in `Authorization: Bearer <token>`, or the password of `Authorization: Basic`. */
function presentedToken(auth: string): string | undefined {
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(auth);
  if (bearer !== null) return bearer[1];
  const basic = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(auth);
  if (basic === null) return undefined;
  const pair = Buffer.from(basic[1]!, 'base64').toString('utf8');
  const colon = pair.indexOf(':');
  return colon === -1 ? undefined : pair.slice(colon + 1);
}

/** Builds the guard of every admin route: undefined when the request may pass, else its refusal. */
export function adminGuard(options: AdminGuardOptions): (req: IncomingMessage) => FlushRefusal | undefined {
  const allowed = clientFilter(options.allowedClients);
  const proxies = clientFilter(options.trustProxy);
  const hosts = new Set(options.hosts);
  const token = options.token === undefined ? undefined : digest(options.token);
  return (req) => {
    const { host, origin } = req.headers;
    if (!isAdminHost(host, hosts)) {
      debug('refused: Host %s is not an admin host', host);
      return { status: 403, reason: 'Forbidden: this Host is not an admin host (an IP address, localhost, or one of flush.hosts)' };
    }
    if (!sameOrigin(origin, host)) {
      debug('refused: Origin %s is not the origin of Host %s', origin, host);
      return { status: 403, reason: 'Forbidden: cross-origin request' };
    }
    const address = req.socket?.remoteAddress;
    if (!allowed(address)) {
      debug('refused: client %s not allowed', address);
      return { status: 403, reason: 'Forbidden: this client address is not in flush.allowedClients' };
    }
    const via = proxyHeader(req.headers) ?? (proxies(address) ? 'flush.trustProxy' : undefined);
    if (token === undefined) {
      if (via === undefined) return undefined;
      debug('refused: proxied (%s) and no token is configured', via);
      return { status: 403, reason: 'Forbidden: a request through a proxy needs a token (set flush.token)' };
    }
    const given = presentedToken(req.headers.authorization ?? '');
    // Compare digests: equal length, constant time, and the token's length is not revealed.
    if (given === undefined || !timingSafeEqual(digest(given), token)) {
      debug('refused: bad or missing token');
      return { status: 403, reason: 'Forbidden: missing or wrong token', challenge: true };
    }
    return undefined;
  };
}
