// Fault: rolling `multi restart` of two nodes, again and again, under load (SQLite). Each node drains
// warm before it is replaced, so every task completes exactly once.

import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { join } from 'node:path';
import { multi, type MultiOptions } from '../../src/multi/index.js';
import { Asynx } from '../../src/index.js';
import { FAULTS_APP, Ledger, Progress, publishLedger, recordRow, scaled, scratch, waitFor } from './harness.js';

describe('fault: rolling multi restart under load (SQLite)', () => {
  const tmp = scratch('multi');
  const brokerUrl = `sqlite://${join(tmp.dir, 'multi.db')}`;
  const nodes = ['m1', 'm2'];
  const opts: MultiOptions = {
    cwd: tmp.dir,
    env: { ...process.env, NO_COLOR: '1' },
    app: FAULTS_APP,
    concurrency: 2,
    broker: brokerUrl,
    loglevel: 'warning',
    hostname: 'localhost',
    pidfile: join(tmp.dir, 'run/%n.pid'),
    logfile: join(tmp.dir, 'log/%n%I.log'),
    startTimeout: 60,
    timeout: 60,
    killAfter: 90,
  };
  after(async () => {
    await multi.kill(nodes, opts).catch(() => undefined);
    tmp.cleanup();
  });

  it('every task completes exactly once across rolling restarts', async () => {
    const n = scaled(2_000);
    const ledger = new Ledger(join(tmp.dir, 'multi.ledger'));
    const client = new Asynx({ brokerUrl, configFile: false, resultBackend: 'none' });
    const t0 = Date.now();
    const ids = await publishLedger(client, n, ledger, 5);
    const started = await multi.start(nodes, opts);
    assert.ok(started.ok, `multi start: ${JSON.stringify(started.nodes)}`);
    const progress = new Progress(ledger);
    const restarts: Array<[number, number]> = [];
    const done = () => ledger.tally(ids).lost === 0;
    while (!done() && restarts.length < 4) {
      await waitFor('some progress', () => ledger.size() > 0, 60_000);
      const at = Date.now();
      const r = await multi.restart(nodes, opts);
      assert.ok(r.ok, `multi restart: ${JSON.stringify(r.nodes)}`);
      restarts.push([at, Date.now()]);
    }
    await ledger.waitAll(ids, 120_000);
    progress.stop();
    const { lost, duplicated } = ledger.tally(ids);
    recordRow({ fault: `rolling multi restart ×${restarts.length} (2 nodes)`, broker: 'sqlite', mode: 'warm (=1)', tasks: n, lost, duplicated, dropped: 0, recoverMs: Math.max(...restarts.map(([a, b]) => progress.longestStall(a, b))), totalMs: Date.now() - t0, note: 'recover = longest stall during a restart' });
    await client.close();
    const stopped = await multi.stopwait(nodes, opts);
    assert.ok(stopped.ok, `multi stopwait: ${JSON.stringify(stopped.nodes)}`);
    assert.ok(restarts.length >= 2, `the fault was injected (${restarts.length} restarts)`);
    assert.equal(lost, 0);
    assert.equal(duplicated, 0, 'a warm rolling restart runs nothing twice');
  });
});
