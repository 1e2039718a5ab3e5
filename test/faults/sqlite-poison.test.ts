// Fault: a poison task that kills its pool child every time it runs (SQLite). After maxDeliveries
// deliveries it is dead-lettered with a clear reason; every other task completes exactly once.

import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Asynx } from '../../src/index.js';
import { Ledger, Nodes, Progress, publishLedger, recordRow, scaled, scratch, waitFor } from './harness.js';

const MAX_DELIVERIES = 3;

describe('fault: poison task that kills its child every time (SQLite)', () => {
  const tmp = scratch('poison');
  const nodes = new Nodes();
  after(async () => {
    await nodes.stopAll();
    tmp.cleanup();
  });

  it(`is dead-lettered after ${MAX_DELIVERIES} deliveries with a reason; the rest are unaffected`, async () => {
    const n = scaled(10_000);
    const dbPath = join(tmp.dir, 'poison.db');
    const brokerUrl = `sqlite://${dbPath}`;
    const ledger = new Ledger(join(tmp.dir, 'poison.ledger'));
    const poisonLog = new Ledger(join(tmp.dir, 'poison.runs'));
    const client = new Asynx({ brokerUrl, configFile: false, resultBackend: 'none' });
    const t0 = Date.now();
    const ids = await publishLedger(client, Math.floor(n / 2), ledger, 0);
    const poison = await client.sendTask('f.poison', [poisonLog.path]);
    ids.push(...(await publishLedger(client, n - ids.length, ledger, 0)));
    const node = await nodes.start({ dir: tmp.dir, brokerUrl, name: 'poison', concurrency: 2, env: { ASYNX_MAX_DELIVERIES: String(MAX_DELIVERIES) } });
    const progress = new Progress(ledger);
    await ledger.waitAll(ids, 180_000);
    const db = new Database(dbPath, { readonly: true, timeout: 10_000 });
    const dead = await waitFor('the poison message in the dead-letter table', () => db.prepare('SELECT reason, deliveries, headers FROM dead_letters').get() as { reason: string; deliveries: number; headers: string } | undefined, 60_000, 100);
    db.close();
    progress.stop();
    const { lost, duplicated } = ledger.tally(ids);
    const runs = [...poisonLog.counts().values()][0] ?? 0;
    recordRow({ fault: `poison task (kills its child)`, broker: 'sqlite', mode: 'acks-early (≤1)', tasks: n + 1, lost, duplicated, dropped: 0, recoverMs: null, totalMs: Date.now() - t0, note: `poison ran ${runs}×, then dead-lettered` });
    await client.close();
    assert.equal(await node.stop(), 0);
    assert.equal(lost, 0);
    assert.equal(duplicated, 0);
    assert.equal(JSON.parse(dead.headers).id, poison.id, 'the dead letter is the poison message');
    assert.match(dead.reason, new RegExp(`delivered ${MAX_DELIVERIES + 1} times without completing`), 'the reason says why');
    assert.equal(runs, MAX_DELIVERIES, `the poison ran exactly ${MAX_DELIVERIES} times`);
    assert.match(node.log(), /moving it to the dead-letter queue/);
  });
});
