// The embedded broker under several real worker processes: each message claimed once; results expire.

import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { Asynx } from '../../src/index.js';
import { SqliteResultBackend } from '../../src/results/sqlite.js';
import { SqliteTransport } from '../../src/transports/sqlite.js';
import { buildTaskMessage } from '../../src/protocol/codec.js';
import { startWorker } from '../helpers/worker.js';
import { tempDir, waitFor } from '../helpers/tmp.js';

describe('embedded SQLite broker', () => {
  const tmp = tempDir();
  after(() => tmp.cleanup());

  it('two worker nodes on one file: 2,000 early-ack tasks, each run exactly once', async () => {
    const db = join(tmp.dir, 'two.db');
    const brokerUrl = `sqlite://${db}`;
    const ledger = join(tmp.dir, 'ledger.txt');
    const client = new Asynx({ brokerUrl, configFile: false });
    const ids: string[] = [];
    for (let i = 0; i < 2000; i++) ids.push((await client.sendTask('t.ledger', [ledger])).id);
    const w1 = await startWorker({ brokerUrl, args: ['-c', '2', '-n', 'one@%h'] });
    const w2 = await startWorker({ brokerUrl, args: ['-c', '2', '-n', 'two@%h'] });
    try {
      await waitFor('all tasks run', () => existsSync(ledger) && readFileSync(ledger, 'utf8').split('\n').filter(Boolean).length >= 2000, 60_000, 100);
      await new Promise((r) => setTimeout(r, 300));
      const seen = readFileSync(ledger, 'utf8').split('\n').filter(Boolean);
      assert.equal(seen.length, 2000, 'no duplicates');
      assert.deepEqual(new Set(seen), new Set(ids), 'none lost');
      const byNode = [w1, w2].map((w) => (w.output().match(/t\.ledger\[/g) ?? []).length);
      assert.ok(byNode[0]! > 0 && byNode[1]! > 0, `both nodes consumed: ${byNode.join(' / ')}`);
    } finally {
      await client.close();
      assert.equal(await w1.stop(), 0);
      assert.equal(await w2.stop(), 0);
    }
  });

  it('a delayed message is not claimable before its eta; then it is, once', async () => {
    const t = new SqliteTransport(join(tmp.dir, 'eta.db'));
    await t.connect();
    const { queue, message } = buildTaskMessage('x', [], {}, { countdown: 0.4 });
    await t.publish(queue, message);
    assert.equal(t.claim([queue], 10).length, 0);
    await new Promise((r) => setTimeout(r, 450));
    assert.equal(t.claim([queue], 10).length, 1);
    assert.equal(t.claim([queue], 10).length, 0, 'leased, so not handed out again');
    await t.close();
  });

  it('results expire after resultExpires', async () => {
    const b = new SqliteResultBackend(join(tmp.dir, 'res.db'), { expiresMs: 50 });
    await b.store({ taskId: 'old' }, { task_id: 'old', status: 'SUCCESS', result: 1, traceback: null, children: [] });
    await new Promise((r) => setTimeout(r, 80));
    await b.store({ taskId: 'new' }, { task_id: 'new', status: 'SUCCESS', result: 2, traceback: null, children: [] });
    assert.equal(await b.cleanup(), 1);
    assert.equal(await b.get('old'), null);
    assert.equal((await b.get('new'))?.result, 2);
    await b.close();
  });

  it('a ready state is final: a late STARTED never overwrites SUCCESS', async () => {
    const b = new SqliteResultBackend(join(tmp.dir, 'res2.db'), { expiresMs: 60_000 });
    await b.store({ taskId: 'a' }, { task_id: 'a', status: 'SUCCESS', result: 1, traceback: null, children: [] });
    await b.store({ taskId: 'a' }, { task_id: 'a', status: 'STARTED', result: null, traceback: null, children: [] });
    assert.equal((await b.get('a'))?.status, 'SUCCESS');
    await b.close();
  });
});
