/**
 * The propagator against a real peer endpoint on 127.0.0.1: batches in order, retried while the
 * peer answers errors, and a peer that fell behind the log window gets a soft invalidation of
 * `/` before the records still held. Also the batch validation.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { InvalidationLog } from '../../src/invalidation/log.js';
import { PeerEndpoint } from '../../src/peers/endpoint.js';
import { Propagator, parseBatch, type WireRecord } from '../../src/peers/propagation.js';
import { listen, sleep } from '../helpers/http.js';

const SECRET = 'test-secret-0123456789abcdef';
const PATH = '/_peer';

async function until(check: () => boolean, what: string, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

test('a peer behind the log window gets a soft invalidation of / first, then the held records, in order', async () => {
  const applied: Array<{ record: WireRecord; node: string }> = [];
  const receiver = new Propagator({
    secret: SECRET,
    path: PATH,
    self: 'http://receiver',
    timeout: 1_000,
    log: new InvalidationLog(),
    peers: () => [],
    apply: (record, from) => void applied.push({ record, node: from.node }),
    onError: () => undefined,
  });
  const endpoint = new PeerEndpoint({ secret: SECRET, path: PATH });
  endpoint.receive('i', (body) => receiver.receive(body));
  let down = true;
  const srv = await listen((req, res) => {
    if (down) {
      req.resume();
      res.writeHead(503).end();
      return;
    }
    void endpoint.handle(req, res);
  });
  after(() => srv.close());

  const log = new InvalidationLog(3);
  const errors: string[] = [];
  const sender = new Propagator({
    secret: SECRET,
    path: PATH,
    self: 'http://sender',
    timeout: 1_000,
    log,
    peers: () => [srv.url],
    apply: () => undefined,
    onError: (e) => void errors.push(e.message),
  });
  after(() => sender.close());
  for (let i = 1; i <= 5; i++) {
    log.append({ origin: 'local', paths: [`/p${i}`], scope: 'tree', hard: false, tags: [], refetch: [] }, Date.now());
    // A remote record in between is never sent on.
    if (i === 4) log.append({ origin: 'remote', paths: ['/from-elsewhere'], scope: 'tree', hard: false, tags: [], refetch: [] }, Date.now());
    sender.push();
  }
  await until(() => sender.counters.propagationErrors >= 2, 'retries while the peer answers 503');
  assert.equal(applied.length, 0);
  assert.match(errors[0]!, /peer answered 503/);
  down = false;
  await until(() => applied.length === 3 && sender.backlog(srv.url) === 0, 'the batch after the peer came back, acknowledged');
  // The log holds ids 4..6 (/p4, the remote record, /p5); /p1../p3 were lost: '/' stands in for them.
  assert.deepEqual(applied.map((a) => a.record.paths[0]), ['/', '/p4', '/p5']);
  assert.equal(sender.counters.propagationResets, 1);
  assert.equal(applied[0]!.record.hard, false);
  assert.ok(applied.every((a) => a.node === 'http://sender'));
  assert.equal(sender.backlog(srv.url), 0);
});

test('a peer without the invalidation namespace (405, an older version) is skipped, not retried', async () => {
  const endpoint = new PeerEndpoint({ secret: SECRET, path: PATH }); // no receiver registered
  const srv = await listen((req, res) => void endpoint.handle(req, res));
  after(() => srv.close());
  const log = new InvalidationLog();
  const sender = new Propagator({ secret: SECRET, path: PATH, self: 'http://sender', timeout: 1_000, log, peers: () => [srv.url], apply: () => undefined, onError: () => undefined });
  after(() => sender.close());
  log.append({ origin: 'local', paths: ['/a'], scope: 'tree', hard: false, tags: [], refetch: [] }, Date.now());
  sender.push();
  await until(() => sender.counters.propagationErrors === 1 && sender.backlog(srv.url) === 0, 'the batch to be dropped');
  await sleep(300); // past the first retry delay: nothing is sent again
  assert.equal(sender.counters.propagationErrors, 1);
  assert.equal(sender.counters.invalidationsSent, 0);
});

test('parseBatch refuses anything malformed', () => {
  const rec = { id: 1, at: 1, paths: ['/a'], scope: 'tree', hard: false, tags: ['t'], refetch: ['/a.html'], host: '' };
  const ok = (doc: unknown) => parseBatch(Buffer.from(JSON.stringify(doc))) !== undefined;
  assert.ok(ok({ o: 'http://n#b', r: [rec] }));
  assert.ok(!ok({ o: 'no-boot-id', r: [rec] }));
  assert.ok(!ok({ o: 'http://n#b', r: [rec, rec] }), 'ids must increase');
  assert.ok(!ok({ o: 'http://n#b', r: [{ ...rec, paths: ['a b'] }] }));
  assert.ok(!ok({ o: 'http://n#b', r: [{ ...rec, tags: ['a b'] }] }));
  assert.ok(!ok({ o: 'http://n#b', r: [{ ...rec, scope: 'all' }] }));
  assert.ok(!ok({ o: 'http://n#b', r: [{ ...rec, at: -1 }] }));
  assert.ok(!ok({ o: 'http://n#b', r: [{ ...rec, hard: 'yes' }] }));
  assert.ok(parseBatch(Buffer.from('not json')) === undefined);
});
