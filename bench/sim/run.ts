/**
 * `npm run bench:sim`: the cluster at 3 to 100 nodes, on paper (issue 20). Prints markdown tables:
 * the check against `npm run bench:cluster` (its workload, 3 nodes), then the size table for each
 * balancer. Seeded and deterministic: the same options give the same numbers.
 *
 *   npm run bench:sim
 *   npm run bench:sim -- --nodes 3,10 --strategies all,owner-fetch --rate 5000 --ttl 30000
 *   npm run bench:sim -- --check        (only the check against bench:cluster)
 *
 * Options: --nodes, --strategies, --balancers (comma lists), --rate (client req/s for the whole
 * cluster), --seconds (measured, after one hit window of warm-up), --ttl (hit window, ms), --urls,
 * --memory-entries (per node), --flush-rate (flushes/s), --render-ms, --peer-ms, --redis-ms,
 * --local-ms, --seed, --check, --seeds (check runs, default 20).
 */
import { parseArgs } from 'node:util';
import { simulate, type Balancer, type SimResult, type Strategy } from './model.js';
import { checkRow, SIZE_DEFAULTS, sizeConfig, type SizeOptions } from './scenarios.js';

const { values } = parseArgs({
  options: {
    nodes: { type: 'string' },
    strategies: { type: 'string' },
    balancers: { type: 'string' },
    rate: { type: 'string' },
    seconds: { type: 'string' },
    ttl: { type: 'string' },
    urls: { type: 'string' },
    'memory-entries': { type: 'string' },
    'flush-rate': { type: 'string' },
    'render-ms': { type: 'string' },
    'peer-ms': { type: 'string' },
    'redis-ms': { type: 'string' },
    'local-ms': { type: 'string' },
    seed: { type: 'string' },
    seeds: { type: 'string' },
    check: { type: 'boolean' },
  },
});

const num = (name: string, raw: string | undefined, fallback: number): number => {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new RangeError(`expected --${name} to be a non-negative number, got ${raw}`);
  return n;
};
const list = <T extends string>(name: string, raw: string | undefined, fallback: T[], allowed: readonly string[]): T[] => {
  if (raw === undefined) return fallback;
  const items = raw.split(',').map((s) => s.trim());
  for (const item of items) if (!allowed.includes(item)) throw new RangeError(`expected --${name} among ${allowed.join(', ')}, got ${item}`);
  return items as T[];
};

const d = SIZE_DEFAULTS;
const options: SizeOptions = {
  nodes: values.nodes === undefined ? d.nodes : values.nodes.split(',').map((s) => num('nodes', s, 3)),
  strategies: list<Strategy>('strategies', values.strategies, d.strategies, d.strategies),
  balancers: list<Balancer>('balancers', values.balancers, d.balancers, d.balancers),
  rate: num('rate', values.rate, d.rate),
  seconds: num('seconds', values.seconds, d.seconds),
  ttl: num('ttl', values.ttl, d.ttl),
  urls: num('urls', values.urls, d.urls),
  memoryEntries: num('memory-entries', values['memory-entries'], d.memoryEntries),
  flushRate: num('flush-rate', values['flush-rate'], d.flushRate),
  latency: {
    localHit: num('local-ms', values['local-ms'], d.latency.localHit),
    peerHop: num('peer-ms', values['peer-ms'], d.latency.peerHop),
    redisCommand: num('redis-ms', values['redis-ms'], d.latency.redisCommand),
    render: num('render-ms', values['render-ms'], d.latency.render),
  },
  seed: num('seed', values.seed, d.seed),
};
const seeds = num('seeds', values.seeds, 20);

const started = performance.now();
const f2 = (x: number): string => x.toFixed(2);
const label: Record<Strategy, string> = {
  none: 'no peers',
  all: "peers `'all'`",
  owner: "peers `'owner'`",
  'owner-fetch': "peers `'owner-fetch'`",
  redis: 'Redis tier alone',
  'redis+owner-fetch': "Redis + `'owner-fetch'`",
};

for (const nodes of [3, 5]) {
  console.log(`## Check against \`npm run bench:cluster\` (${nodes} nodes, 300 URLs each requested once on every node, one request at a time; ${seeds} seeds)\n`);
  console.log('| strategy | renders per URL: mean (min to max) | peer requests per client request | peer requests per local miss |');
  console.log('| --- | ---: | ---: | ---: |');
  for (const strategy of ['none', 'all', 'owner', 'owner-fetch'] as Strategy[]) {
    const row = checkRow(strategy, seeds, nodes);
    const cell = (s: { mean: number; min: number; max: number }): string => `${f2(s.mean)} (${f2(s.min)} to ${f2(s.max)})`;
    console.log(`| ${label[strategy]} | ${cell(row.rendersPerUrl)} | ${cell(row.peerRequestsPerRequest)} | ${cell(row.peerRequestsPerLocalMiss)} |`);
  }
  console.log('');
}

if (values.check !== true) {
  const { latency: l } = options;
  console.log(
    `Workload: Zipf(1.0) over ${options.urls.toLocaleString('en')} URLs, ${options.rate} client req/s for the whole cluster (Poisson), hit window ${options.ttl / 1000} s, ` +
      `${options.seconds} s measured after ${options.ttl / 1000} s of warm-up, ${options.memoryEntries} entries of memory per node, ${options.flushRate} flush/s, ` +
      `render ${l.render} ms, local hit ${l.localHit} ms, peer hop +${l.peerHop} ms, Redis command ${l.redisCommand} ms, seed ${options.seed}.`,
  );
  for (const balancer of options.balancers) {
    console.log(`\n## Behind ${balancer === 'round-robin' ? 'a round-robin' : 'a key-hashing'} load balancer\n`);
    console.log('| nodes | strategy | origin renders/s | ÷ least possible | local hit ratio | peer requests per client request | Redis commands/s | Redis MB/s | invalidation messages per flush | added latency mean / p99 (ms) |');
    console.log('| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const nodes of options.nodes) {
      for (const strategy of options.strategies) {
        const r: SimResult = simulate(sizeConfig(options, nodes, strategy, balancer));
        const perSecond = (x: number): number => (r.measuredMs === 0 ? 0 : (x * 1000) / r.measuredMs);
        console.log(
          `| ${nodes} | ${label[strategy]} | ${perSecond(r.renders).toFixed(1)} | ${f2(r.renders / r.minimumRenders)} | ${(r.localHits / r.requests).toFixed(3)} | ${f2(r.peerRequests / r.requests)} | ` +
            `${perSecond(r.redisCommands).toFixed(0)} | ${(perSecond(r.redisBytes) / 1e6).toFixed(2)} | ${r.flushes === 0 ? '-' : (r.invalidationMessages / r.flushes).toFixed(0)} | ` +
            `${f2(r.added.mean)} / ${f2(r.added.p99)} |`,
        );
      }
    }
  }
}
console.log(`\n(simulated in ${((performance.now() - started) / 1000).toFixed(1)} s)`);
