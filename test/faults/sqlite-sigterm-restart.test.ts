// Fault: SIGTERM to a node under load, then start it again, in a loop (SQLite). A warm shutdown gives
// prefetched messages back and lets running tasks finish, so every task completes exactly once.

import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Asynx } from '../../src/index.js';
import { Ledger, Nodes, Progress, publishLedger, recordRow, scaled, scratch } from './harness.js';

describe('fault: SIGTERM to a node, then start it again (SQLite)', () => {
  const tmp = scratch('term');
  const nodes = new Nodes();
  after(async () => {
    await nodes.stopAll();
    tmp.cleanup();
  });

  it('warm shutdown loop: every task completes exactly once', async () => {
    const n = scaled(2_000);
    const brokerUrl = `sqlite://${join(tmp.dir, 'term.db')}`;
    const ledger = new Ledger(join(tmp.dir, 'term.ledger'));
    const client = new Asynx({ brokerUrl, configFile: false, resultBackend: 'none' });
    const spec = { dir: tmp.dir, brokerUrl, name: 'term', concurrency: 2 };
    const t0 = Date.now();
    // 5 ms tasks: long enough that every SIGTERM lands while tasks run and messages are prefetched.
    const ids = await publishLedger(client, n, ledger, 5);
    let node = await nodes.start(spec);
    const progress = new Progress(ledger);
    const restarts: Array<[number, number]> = [];
    const done = () => ledger.tally(ids).lost === 0;
    while (!done() && restarts.length < 6) {
      await sleep(600);
      if (done()) break;
      const at = Date.now();
      const code = await node.stop('SIGTERM', 30_000);
      assert.equal(code, 0, `warm shutdown exits 0 (got ${code}):\n${node.log()}`);
      restarts.push([at, Date.now()]);
      node = await nodes.start(spec);
    }
    await ledger.waitAll(ids, 120_000);
    progress.stop();
    const { lost, duplicated } = ledger.tally(ids);
    recordRow({ fault: `SIGTERM node ×${restarts.length} + start`, broker: 'sqlite', mode: 'warm (=1)', tasks: n, lost, duplicated, dropped: 0, recoverMs: progress.worst(restarts), totalMs: Date.now() - t0 });
    await client.close();
    await node.stop();
    assert.ok(restarts.length >= 3, `the fault was injected (${restarts.length} restarts)`);
    assert.equal(lost, 0);
    assert.equal(duplicated, 0, 'a warm shutdown runs nothing twice');
  });
});
