/**
 * Every way a flight ends has one documented action for its waiters: the code's table
 * (`WAITER_ACTIONS`) covers every outcome, and docs/ARCHITECTURE.md shows exactly that table.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { FLIGHT_OUTCOMES, WAITER_ACTIONS, type WaiterAction } from '../../src/engine/outcome.js';

const ACTIONS: readonly WaiterAction[] = ['serve', 'answer', 'render', 'retry', '504', 'lookup'];

test('every flight outcome has an action for its waiters, and only known actions', () => {
  assert.deepEqual(Object.keys(WAITER_ACTIONS).sort(), [...FLIGHT_OUTCOMES].sort());
  for (const outcome of FLIGHT_OUTCOMES) assert.ok(ACTIONS.includes(WAITER_ACTIONS[outcome]), `${outcome} -> ${WAITER_ACTIONS[outcome]}`);
});

test("docs/ARCHITECTURE.md's outcome table is the code's", () => {
  const doc = readFileSync(new URL('../../docs/ARCHITECTURE.md', import.meta.url), 'utf8');
  const start = doc.indexOf('| outcome | when | waiters |');
  assert.ok(start >= 0, 'the outcome table is in docs/ARCHITECTURE.md');
  const lines = doc.slice(start).split('\n').slice(2);
  // The table ends at its first line that is not a row.
  const rows = lines.slice(0, lines.findIndex((line) => !line.startsWith('|')));
  const documented = new Map(rows.map((row) => {
    const cells = row.split('|').map((c) => c.trim());
    const outcome = /^`([^`]+)`$/.exec(cells[1]!)?.[1];
    const action = /`([^`]+)`/.exec(cells[3]!)?.[1];
    return [outcome, action] as const;
  }));
  assert.deepEqual([...documented.keys()].sort(), [...FLIGHT_OUTCOMES].sort(), 'the documented outcomes are the enum');
  for (const outcome of FLIGHT_OUTCOMES) assert.equal(documented.get(outcome), WAITER_ACTIONS[outcome], `the documented action of ${outcome}`);
});
