// Rate-limited tasks waiting in a worker's buffer on SQLite: one that expires or is revoked while it waits is not run;
// a warm shutdown gives the waiting ones back to the broker (at-least-once).

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openControlClient } from '../../src/control/client.js';
import { Asynx } from '../../src/index.js';
import { linesOf, RATE_APP, readRecord } from '../helpers/rate-record.js';
import { tempDir, waitFor } from '../helpers/tmp.js';
import { startWorker, type RunningWorker } from '../helpers/worker.js';

describe('rate-limited tasks waiting in the buffer', () => {
  const tmp = tempDir('asynx-rate-edges-');
  const brokerUrl = `sqlite://${join(tmp.dir, 'broker.db')}`;
  const record = join(tmp.dir, 'record.txt');
  let worker: RunningWorker;
  let client: Asynx;

  before(async () => {
    worker = await startWorker({ brokerUrl, app: RATE_APP, args: ['-c', '2'], env: { ASYNX_TEST_RECORD: record } });
    client = new Asynx({ brokerUrl, configFile: false });
  });
  after(async () => {
    await client?.close();
    await worker?.stop();
    tmp.cleanup();
  });

  it('a task that expires while it waits for its token is REVOKED, never started after its expires (Celery checks at start)', async () => {
    // 1/s: the 2nd is due after 1 s, the 3rd after 2 s (held in the buffer, within the 2 s hold); all expire at 1.5 s.
    const expires = new Date(Date.now() + 1500);
    const rs = await Promise.all([0, 1, 2, 3].map(() => client.sendTask('r.plain', [0], {}, { rateLimit: '1/s', expires })));
    const ids = new Set(rs.map((r) => r.id));
    await waitFor('every task ended or revoked', async () => (await Promise.all(rs.map((r) => r.state()))).every((s) => s === 'SUCCESS' || s === 'REVOKED'), 20_000, 100);
    const late = linesOf(readRecord(record), 'r.plain', 'start', ids).filter((l) => l.at > expires.getTime());
    assert.deepEqual(late.map((l) => l.at - expires.getTime()), [], 'no task started after it expired (ms past expires)');
    const states = await Promise.all(rs.map((r) => r.state()));
    assert.ok(states.filter((s) => s === 'REVOKED').length >= 2, `the 3rd and 4th are revoked: ${states.join(', ')}`);
  });

  it('a task revoked while it waits for its token never starts; the others do', async () => {
    const rs = await Promise.all([0, 1, 2, 3].map(() => client.sendTask('r.plain', [0], {}, { rateLimit: '2/s' })));
    const ids = new Set(rs.map((r) => r.id));
    await waitFor('the first started', () => linesOf(readRecord(record), 'r.plain', 'start', ids).length >= 1, 20_000, 20);
    const control = await openControlClient(brokerUrl);
    try {
      await control.broadcast('revoke', { task_id: rs[3]!.id }, { reply: false });
    } finally {
      await control.close();
    }
    await waitFor('every task ended or revoked', async () => (await Promise.all(rs.map((r) => r.state()))).every((s) => s === 'SUCCESS' || s === 'REVOKED'), 20_000, 100);
    assert.deepEqual(await Promise.all(rs.map((r) => r.state())), ['SUCCESS', 'SUCCESS', 'SUCCESS', 'REVOKED']);
    assert.deepEqual(linesOf(readRecord(record), 'r.plain', 'start', ids).map((l) => l.id), rs.slice(0, 3).map((r) => r.id));
  });

  it('a warm shutdown (SIGTERM) gives the tasks waiting for their token back: a new worker runs each once', async () => {
    const rs = await Promise.all([0, 1, 2, 3, 4, 5].map(() => client.sendTask('r.plain', [0], {}, { rateLimit: '1/s' })));
    const ids = new Set(rs.map((r) => r.id));
    await waitFor('the first started', () => linesOf(readRecord(record), 'r.plain', 'start', ids).length >= 1, 20_000, 20);
    assert.equal(await worker.stop('SIGTERM'), 0);
    assert.ok(linesOf(readRecord(record), 'r.plain', 'start', ids).length < 6, 'some were still waiting at the shutdown');
    worker = await startWorker({ brokerUrl, app: RATE_APP, args: ['-c', '2'], env: { ASYNX_TEST_RECORD: record } });
    await Promise.all(rs.map((r) => r.get({ timeout: 30 })));
    const starts = linesOf(readRecord(record), 'r.plain', 'start', ids).map((l) => l.id);
    assert.deepEqual([...starts].sort(), rs.map((r) => r.id).sort(), 'each ran exactly once');
  });
});
