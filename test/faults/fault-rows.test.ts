// A fault row is checked where it is produced: recordRow fails the test that lost (or, outside acks-late,
// duplicated) a task, so every fault file asserts its own rows when run alone.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { recordRow, rowViolations, type FaultRow } from './harness.js';

const row = (over: Partial<FaultRow>): FaultRow => ({ fault: 'unit row', broker: 'sqlite', mode: 'acks-late (≥1)', tasks: 10, lost: 0, duplicated: 0, dropped: 0, recoverMs: null, totalMs: 1, ...over });
const dir = mkdtempSync(join(tmpdir(), 'asynx-fault-rows-'));
after(() => rmSync(dir, { recursive: true, force: true }));

it('a row that lost a task fails the test that records it', () => {
  assert.throws(() => recordRow(row({ lost: 1 })), (err: Error) => err.name === 'AssertionError' && /unit row/.test(err.message) && /1 of 10 tasks lost/.test(err.message));
});

it('duplicates are allowed only in acks-late mode', () => {
  assert.deepEqual(rowViolations(row({ duplicated: 3 })), []);
  assert.deepEqual(rowViolations(row({ mode: 'acks-early (≤1)', duplicated: 1 })), ['1 tasks ran twice in acks-early (≤1) mode']);
  assert.deepEqual(rowViolations(row({ mode: 'warm (=1)', duplicated: 2 })), ['2 tasks ran twice in warm (=1) mode']);
  assert.throws(() => recordRow(row({ mode: 'warm (=1)', duplicated: 2 })));
});

it('a row that keeps its promise passes, and goes to ASYNX_FAULT_TABLE when that names a file', () => {
  const file = join(dir, 'rows.jsonl');
  const before = process.env.ASYNX_FAULT_TABLE;
  process.env.ASYNX_FAULT_TABLE = file;
  try {
    recordRow(row({ dropped: 2, mode: 'acks-early (≤1)' }));
  } finally {
    if (before === undefined) delete process.env.ASYNX_FAULT_TABLE;
    else process.env.ASYNX_FAULT_TABLE = before;
  }
  assert.deepEqual(readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as FaultRow), [row({ dropped: 2, mode: 'acks-early (≤1)' })]);
});
