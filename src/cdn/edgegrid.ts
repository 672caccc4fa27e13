/**
 * Akamai EdgeGrid request signing (`EG1-HMAC-SHA256`), as Akamai's client libraries implement
 * it: a signing key = HMAC-SHA256(client secret, timestamp); the signed data = method, scheme,
 * host, path with query, canonical headers (none signed here), the base64 SHA-256 of a POST body
 * (its first `maxBody` bytes), and the unsigned header itself, joined by tabs; the signature =
 * HMAC-SHA256(signing key, data), base64.
 */
import { createHash, createHmac, randomUUID } from 'node:crypto';

/** The API client's credentials. */
export interface EdgeGridCredentials {
  clientToken: string;
  clientSecret: string;
  accessToken: string;
}

/** Longest part of a POST body that is hashed (the client libraries' default). */
export const EDGEGRID_MAX_BODY = 131_072;

/** `yyyyMMddTHH:mm:ss+0000` in UTC. */
export function edgeGridTimestamp(date: Date): string {
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `${date.getUTCFullYear()}${pad(date.getUTCMonth() + 1)}${pad(date.getUTCDate())}T${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())}+0000`;
}

const hmac = (key: string, data: string): string => createHmac('sha256', key).update(data, 'utf8').digest('base64');

/** The `Authorization` header value for one request. `timestamp` and `nonce` are injectable for tests. */
export function edgeGridAuthorization(
  credentials: EdgeGridCredentials,
  request: { method: string; url: URL; body: string },
  at: { timestamp?: string; nonce?: string; maxBody?: number } = {},
): string {
  const timestamp = at.timestamp ?? edgeGridTimestamp(new Date());
  const nonce = at.nonce ?? randomUUID();
  const unsigned = `EG1-HMAC-SHA256 client_token=${credentials.clientToken};access_token=${credentials.accessToken};timestamp=${timestamp};nonce=${nonce};`;
  const method = request.method.toUpperCase();
  const body = Buffer.from(request.body, 'utf8').subarray(0, at.maxBody ?? EDGEGRID_MAX_BODY);
  const contentHash = method === 'POST' && body.length > 0 ? createHash('sha256').update(body).digest('base64') : '';
  const { url } = request;
  const data = [method, url.protocol.slice(0, -1).toLowerCase(), url.host.toLowerCase(), url.pathname + url.search, '', contentHash, unsigned].join('\t');
  return `${unsigned}signature=${hmac(hmac(credentials.clientSecret, timestamp), data)}`;
}
