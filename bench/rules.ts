/**
 * Cost of matching a request against per-route rules (`options.rules`): paid once per response
 * judged for storage (policy.ts), and per served entry only with `cacheStatusDetail`. Never on
 * the plain hit path. Run by hand: `npx tsx bench/rules.ts`.
 */
import { resolveRules } from '../src/rules.js';

const RULES = 50;
const rules = resolveRules(Array.from({ length: RULES }, (_, i) => ({ match: `/section${i}/**`, ttl: 1000 })))!;
const urls = Array.from({ length: 1000 }, (_, i) => `/section${i % 60}/page${i}.html?x=1`);
const rounds = 200;
let matched = 0;
const start = process.hrtime.bigint();
for (let r = 0; r < rounds; r++) for (const url of urls) if (rules.match('GET', 'example.com', url) !== undefined) matched++;
const perCall = Number(process.hrtime.bigint() - start) / (rounds * urls.length);
console.log(`RuleSet.match with ${RULES} rules (1 URL in 6 matches none): ${perCall.toFixed(0)} ns per call, ${matched} matches`);
