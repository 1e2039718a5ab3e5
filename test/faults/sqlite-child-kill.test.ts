// Fault: kill -9 of a pool child, again and again, under load (SQLite). Acks late: every task completes,
// duplicates counted. Acks early: nothing runs twice; only the tasks running in a killed child are dropped.

import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Asynx } from '../../src/index.js';
import { childPids, Ledger, Nodes, Progress, publishLedger, recordRow, scaled, scratch, waitFor } from './harness.js';

/** Ids that the worker reported as lost with their child (acks early: dropped by design, FAILURE stored). */
export function reportedLost(log: string): Set<string> {
  return new Set([...log.matchAll(/Task f\.ledger\[([0-9a-f-]{36})\] failed: WorkerLostError/g)].map((m) => m[1]!));
}

describe('fault: kill -9 of a pool child (SQLite)', () => {
  const tmp = scratch('child');
  const nodes = new Nodes();
  after(async () => {
    await nodes.stopAll();
    tmp.cleanup();
  });

  for (const mode of ['acks-late', 'acks-early'] as const) {
    it(`${mode}: ${mode === 'acks-late' ? 'every task completes, duplicates counted' : 'no task runs twice; drops only what a killed child was running'}`, async () => {
      const n = scaled(10_000);
      const brokerUrl = `sqlite://${join(tmp.dir, `${mode}.db`)}`;
      const ledger = new Ledger(join(tmp.dir, `${mode}.ledger`));
      const client = new Asynx({ brokerUrl, configFile: false, resultBackend: 'none' });
      const t0 = Date.now();
      const ids = await publishLedger(client, n, ledger, 1);
      const node = await nodes.start({ dir: tmp.dir, brokerUrl, name: `child-${mode}`, concurrency: 2, env: { ASYNX_ACKS_LATE: mode === 'acks-late' ? '1' : '0' } });
      const progress = new Progress(ledger);
      await waitFor('10% done', () => ledger.size() > n * 37 * 0.1, 60_000);
      const kills: number[] = [];
      const settled = () => {
        const c = ledger.counts();
        const dropped = reportedLost(node.log());
        return ids.every((id) => c.has(id) || dropped.has(id));
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
        broker: 'sqlite',
        mode: mode === 'acks-late' ? 'acks-late (≥1)' : 'acks-early (≤1)',
        tasks: n,
        lost,
        duplicated,
        dropped: mode === 'acks-late' ? 0 : missing.length,
        recoverMs: progress.worst(kills),
        totalMs: Date.now() - t0,
      });
      await client.close();
      await node.stop();
      assert.ok(kills.length >= 5, `the fault was injected (${kills.length} kills)`);
      assert.equal(lost, 0, 'no task lost beyond what the mode allows');
      if (mode === 'acks-late') {
        assert.equal(missing.length, 0, 'acks late: every task id completed');
        assert.ok(duplicated <= kills.length, `at most one duplicate per kill (${duplicated} for ${kills.length} kills)`);
      } else {
        assert.equal(duplicated, 0, 'acks early: at most once');
        assert.ok(missing.length <= kills.length, `at most the killed child's task is dropped per kill (${missing.length} for ${kills.length})`);
      }
    });
  }
});
