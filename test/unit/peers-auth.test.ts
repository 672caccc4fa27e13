import assert from 'node:assert/strict';
import { test } from 'node:test';
import { REPLAY_WINDOW, REPLY_SIGNATURE_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, replyMac, sameReplyMac, signRequest, verifyRequest } from '../../src/peers/auth.js';

const secret = 'shared-secret-0123456789';
const target = '/_stratacache/peer/r?k=www.example.com%2Fa&h=accept-language%3Afr';
const now = 1_700_000_000_000;

test('a request signed with the shared secret verifies', () => {
  const headers = signRequest(secret, 'GET', target, now);
  assert.ok(headers[TIMESTAMP_HEADER] && headers[SIGNATURE_HEADER]);
  const v = verifyRequest(secret, { method: 'GET', target, headers }, now + 1000);
  assert.equal(v.ok, true);
});

test('a wrong secret, a tampered path or query, another method, or no headers are refused', () => {
  const headers = signRequest(secret, 'GET', target, now);
  assert.deepEqual(verifyRequest('another-secret-0123456789', { method: 'GET', target, headers }, now), { ok: false, reason: 'bad signature' });
  assert.deepEqual(verifyRequest(secret, { method: 'GET', target: target.replace('fr', 'en'), headers }, now), { ok: false, reason: 'bad signature' });
  assert.deepEqual(verifyRequest(secret, { method: 'GET', target: '/_stratacache/peer/r?k=www.example.com%2Fb', headers }, now), { ok: false, reason: 'bad signature' });
  assert.deepEqual(verifyRequest(secret, { method: 'DELETE', target, headers }, now), { ok: false, reason: 'bad signature' });
  assert.deepEqual(verifyRequest(secret, { method: 'GET', target, headers: {} }, now), { ok: false, reason: 'missing' });
  const truncated = { ...headers, [SIGNATURE_HEADER]: headers[SIGNATURE_HEADER]!.slice(0, 10) };
  assert.deepEqual(verifyRequest(secret, { method: 'GET', target, headers: truncated }, now), { ok: false, reason: 'bad signature' });
  // The timestamp is signed: moving it breaks the signature.
  const moved = { ...headers, [TIMESTAMP_HEADER]: String(now + 1) };
  assert.deepEqual(verifyRequest(secret, { method: 'GET', target, headers: moved }, now), { ok: false, reason: 'bad signature' });
});

test('timestamps outside the replay window are refused in both directions', () => {
  const headers = signRequest(secret, 'GET', target, now);
  assert.equal(verifyRequest(secret, { method: 'GET', target, headers }, now + REPLAY_WINDOW).ok, true);
  assert.deepEqual(verifyRequest(secret, { method: 'GET', target, headers }, now + REPLAY_WINDOW + 1), { ok: false, reason: 'expired' });
  assert.deepEqual(verifyRequest(secret, { method: 'GET', target, headers }, now - REPLAY_WINDOW - 1), { ok: false, reason: 'expired' });
});

test('a reply MAC binds the body to the request signature', () => {
  const requestSig = signRequest(secret, 'GET', target, now)[SIGNATURE_HEADER]!;
  const body = Buffer.from('entry bytes');
  const sent = replyMac(secret, requestSig, 200).update(body).digest('base64url');
  assert.equal(sameReplyMac(replyMac(secret, requestSig, 200).update(body).digest(), sent), true);
  assert.equal(sameReplyMac(replyMac(secret, requestSig, 200).update(Buffer.from('entry bytez')).digest(), sent), false);
  const otherRequest = signRequest(secret, 'GET', target, now + 1)[SIGNATURE_HEADER]!;
  assert.equal(sameReplyMac(replyMac(secret, otherRequest, 200).update(body).digest(), sent), false);
  assert.equal(sameReplyMac(replyMac(secret, requestSig, 200).update(body).digest(), undefined), false);
  assert.equal(REPLY_SIGNATURE_HEADER, 'x-stratacache-reply-signature');
});
