// The kill -9 of a pool child row, one driver for every broker: a random child is killed every 250 ms under
// load. Acks late: every task completes, duplicates counted. Acks early: nothing runs twice; only the tasks
// running in a killed child are dropped, each failed with WorkerLostError. Either way the pool is whole again.

import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Asynx } from '../../src/index.js';
import { childPids, type FaultRow, type Ledger, type Nodes, type NodeSpec, Progress, publishLedger, recordRow, waitFor } from './harness.js';

/** Ids that the worker reported as lost with their child (acks early: dropped by design, FAILURE stored). */
export function reportedLost(log: string): Set<string> {
  return new Set([...log.matchAll(/Task f\.ledger\[([0-9a-f-]{36})\] failed: WorkerLostError/g)].map((m) => m[1]!));
}

export interface ChildKillCase {
  broker: FaultRow['broker'];
  mode: 'acks-late' | 'acks-early';
  /** Publishes to the queue the node consumes. */
  client: Asynx;
  ledger: Ledger;
  /** The node; the driver sets ASYNX_ACKS_LATE from `mode`. */
  spec: NodeSpec;
  nodes: Nodes;
  n: number;
  note?: string;
}

/** Runs the row: publishes `n` 1 ms ledger tasks, kills children until settled, records and asserts the row. */
export async function childKillRow(c: ChildKillCase): Promise<void> {
  const { ledger, n } = c;
  const concurrency = c.spec.concurrency ?? 2;
  const t0 = Date.now();
  const ids = await publishLedger(c.client, n, ledger, 1);
  const node = await c.nodes.start({ ...c.spec, concurrency, env: { ...c.spec.env, ASYNX_ACKS_LATE: c.mode === 'acks-late' ? '1' : '0' } });
  const progress = new Progress(ledger);
  await waitFor('10% done', () => ledger.size() > n * 37 * 0.1, 60_000);
  const kills: number[] = [];
  const settled = () => {
    const done = ledger.counts();
    const dropped = reportedLost(node.log());
    return ids.every((id) => done.has(id) || dropped.has(id));
  };
  for (let i = 0; i < 20 && !settled(); i++) {
    const kids = childPids(node.pid);
    if (kids.length) {
      process.kill(kids[Math.floor(Math.random() * kids.length)]!, 'SIGKILL');
      kills.push(Date.now());
    }
    await sleep(250);
  }
  await waitFor(`all ${n} tasks completed or reported lost`, settled, 180_000, 200);
  progress.stop();
  const { duplicated, missing } = ledger.tally(ids);
  const dropped = reportedLost(node.log());
  const lost = missing.filter((id) => !dropped.has(id)).length;
  recordRow({
    fault: `kill -9 pool child ×${kills.length}`,
    broker: c.broker,
    mode: c.mode === 'acks-late' ? 'acks-late (≥1)' : 'acks-early (≤1)',
    tasks: n,
    lost,
    duplicated,
    dropped: c.mode === 'acks-late' ? 0 : missing.length,
    recoverMs: progress.worst(kills),
    totalMs: Date.now() - t0,
    ...(c.note ? { note: c.note } : {}),
  });
  // Every killed child was replaced: the pool is back to its size, and the node still runs a task.
  await waitFor(`${concurrency} pool children again`, () => childPids(node.pid).length === concurrency, 30_000, 100).catch((err: Error) => {
    throw new Error(`${err.message} (${childPids(node.pid).length} now):\n${node.log().slice(-2000)}`);
  });
  await ledger.waitAll(await publishLedger(c.client, 1, ledger, 0), 30_000);
  assert.equal(await node.stop(), 0, 'the node survived the kills and stopped cleanly');
  assert.ok(kills.length >= 5, `the fault was injected (${kills.length} kills)`);
  assert.equal(lost, 0, 'no task lost beyond what the mode allows');
  if (c.mode === 'acks-late') {
    assert.equal(missing.length, 0, 'acks late: every task id completed');
    assert.ok(duplicated <= kills.length, `at most one duplicate per kill (${duplicated} for ${kills.length} kills)`);
  } else {
    assert.equal(duplicated, 0, 'acks early: at most once');
    assert.ok(missing.length <= kills.length, `at most the killed child's task is dropped per kill (${missing.length} for ${kills.length})`);
  }
}
