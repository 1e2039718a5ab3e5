// Prints the fault table collected from the other test/faults files of this run (they run before it, in
// name order, one at a time), and asserts that no row lost a task.

import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { it } from 'node:test';
import { formatTable, resultsFile, type FaultRow } from './harness.js';

it('fault matrix: 0 lost in every row', () => {
  const file = resultsFile();
  const rows: FaultRow[] = existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as FaultRow) : [];
  rmSync(file, { force: true });
  if (!rows.length) return; // run alone: nothing to summarise
  console.log(`\n${formatTable(rows)}\n`);
  if (process.env.ASYNX_FAULT_TABLE) {
    // For BENCHMARKS.md / CI artefacts: the same rows as JSON.
    writeFileSync(process.env.ASYNX_FAULT_TABLE, JSON.stringify(rows, null, 2));
  }
  assert.deepEqual(rows.filter((r) => r.lost > 0).map((r) => r.fault), [], 'rows with lost tasks');
});
