// `node --import tsx bench/fault-table.ts <rows.jsonl>`: the fault rows a run wrote (ASYNX_FAULT_TABLE) as the
// Markdown table of BENCHMARKS.md.

import { readFileSync } from 'node:fs';
import type { FaultRow } from '../test/faults/harness.js';

const file = process.argv[2];
if (!file) {
  process.stderr.write('Usage: ASYNX_FAULT_TABLE=/tmp/rows.jsonl npm run test:faults; node --import tsx bench/fault-table.ts /tmp/rows.jsonl\n');
  process.exit(64);
}
const rows = readFileSync(file, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line) as FaultRow);
const secs = (ms: number | null, digits: number) => (ms === null || ms === 0 ? '-' : `${(ms / 1000).toFixed(digits)}s`);
const lines = [
  '| fault | broker | mode | tasks | lost | dup | dropped | recover | total | note |',
  '|---|---|---|---|---|---|---|---|---|---|',
  ...rows.map((r) => `| ${[r.fault, r.broker, r.mode, r.tasks, r.lost, r.duplicated, r.dropped, secs(r.recoverMs, 2), secs(r.totalMs, 1), r.note ?? ''].join(' | ')} |`),
];
process.stdout.write(`${lines.join('\n')}\n`);
