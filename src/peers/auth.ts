/**
 * Authentication of the peer protocol with a shared secret. A request carries a timestamp and
 * an HMAC-SHA256 over its method, its target (path and query) and that timestamp; a peer refuses
 * a missing or wrong signature, and a timestamp further than {@link REPLAY_WINDOW} from its own
 * clock in either direction (an old capture replayed, or a forged future one). A reply carrying
 * an entry is signed too, over the request's signature, its status and its body, so an entry can
 * only come from a holder of the secret answering this very request.
 */
import { createHmac, timingSafeEqual, type Hmac } from 'node:crypto';

/** Request header: the signing time, epoch ms. */
export const TIMESTAMP_HEADER = 'x-stratacache-ts';
/** Request header: base64url HMAC-SHA256 of the request. */
export const SIGNATURE_HEADER = 'x-stratacache-signature';
/** Reply header: base64url HMAC-SHA256 of the reply (status and body) bound to the request's signature. */
export const REPLY_SIGNATURE_HEADER = 'x-stratacache-reply-signature';
/** Largest accepted distance in ms between a request's timestamp and the receiver's clock. */
export const REPLAY_WINDOW = 30_000;

const REQUEST_CONTEXT = 'stratacache-peer-v1';
const REPLY_CONTEXT = 'stratacache-peer-reply-v1';

function requestMac(secret: string, method: string, target: string, ts: string): Buffer {
  return createHmac('sha256', secret).update(`${REQUEST_CONTEXT}\n${method.toUpperCase()}\n${target}\n${ts}`).digest();
}

/** Constant-time comparison of a base64url signature with the expected MAC. */
function sameMac(expected: Buffer, given: string): boolean {
  const actual = Buffer.from(given, 'base64url');
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

/** The headers that authenticate a request for `method` and `target` (path and query) at `now`. */
export function signRequest(secret: string, method: string, target: string, now: number = Date.now()): Record<string, string> {
  const ts = String(now);
  return { [TIMESTAMP_HEADER]: ts, [SIGNATURE_HEADER]: requestMac(secret, method, target, ts).toString('base64url') };
}

/** Why a request was refused (a short reason token for debug logs), or ok with its signature. */
export type Verification = { ok: true; signature: string } | { ok: false; reason: 'missing' | 'expired' | 'bad signature' };

/**
 * Checks a request's signature and timestamp against `secret` and the local clock.
 * `headers` are Node's lower-cased request headers.
 */
export function verifyRequest(
  secret: string,
  request: { method: string; target: string; headers: Record<string, string | string[] | undefined> },
  now: number = Date.now(),
): Verification {
  const ts = request.headers[TIMESTAMP_HEADER];
  const signature = request.headers[SIGNATURE_HEADER];
  if (typeof ts !== 'string' || typeof signature !== 'string' || !/^\d{1,16}$/.test(ts)) return { ok: false, reason: 'missing' };
  // Check the MAC before the clock, so a forger learns nothing about the window.
  if (!sameMac(requestMac(secret, request.method, request.target, ts), signature)) return { ok: false, reason: 'bad signature' };
  if (Math.abs(now - Number(ts)) > REPLAY_WINDOW) return { ok: false, reason: 'expired' };
  return { ok: true, signature };
}

/**
 * A running MAC of a reply: feed it the body with `update`, then `digest('base64url')` is the
 * {@link REPLY_SIGNATURE_HEADER} value (sender) or the value to compare with {@link sameReplyMac} (receiver).
 */
export function replyMac(secret: string, requestSignature: string, status: number): Hmac {
  return createHmac('sha256', secret).update(`${REPLY_CONTEXT}\n${requestSignature}\n${status}\n`);
}

/** Constant-time check of a received reply signature against the locally computed MAC digest. */
export function sameReplyMac(expected: Buffer, given: string | string[] | undefined): boolean {
  return typeof given === 'string' && sameMac(expected, given);
}
