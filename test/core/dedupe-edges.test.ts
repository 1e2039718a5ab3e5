// Dedupe keys on SQLite at the edges: a message rejected after too many deliveries frees its key; a retried task
// holds it through its next attempt too; a failed one frees it.

import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { Asynx } from '../../src/index.js';
import { CANVAS_APP as APP } from '../helpers/canvas.js';
import { RATE_APP } from '../helpers/rate-record.js';
import { assertRetryKeepsKey } from '../helpers/shared-limits.js';
import { tempDir, waitFor } from '../helpers/tmp.js';
import { startWorker, type RunningWorker } from '../helpers/worker.js';

const lines = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : []);
const tmp = tempDir('asynx-dedupe-edges-');
const workers: RunningWorker[] = [];
after(async () => {
  for (const w of workers) await w.stop('SIGKILL').catch(() => undefined);
  tmp.cleanup();
});

it('a deduped task rejected after maxDeliveries (its worker died each time) frees its key: the next send runs', async () => {
  const brokerUrl = `sqlite://${join(tmp.dir, 'd.db')}`;
  const ledger = join(tmp.dir, 'ledger');
  const env = { ASYNX_VISIBILITY_TIMEOUT: '2s', ASYNX_MAX_DELIVERIES: '1' };
  const client = new Asynx({ brokerUrl, configFile: false });
  try {
    const first = await client.sendTask('c.slow', ['first', ledger, 60_000], {}, { dedupeKey: 'k' });
    const a = await startWorker({ brokerUrl, app: APP, args: ['-c', '1', '-n', 'a@%h'], env });
    workers.push(a);
    await waitFor('the first run started', () => lines(ledger).includes('first'), 20_000);
    await a.stop('SIGKILL');
    const b = await startWorker({ brokerUrl, app: APP, args: ['-c', '1', '-n', 'b@%h'], env });
    workers.push(b);
    // Delivered a second time with maxDeliveries 1: rejected, stored as FAILURE (WorkerLostError).
    await waitFor('the first task rejected', async () => (await first.state()) === 'FAILURE', 30_000, 100);
    const next = await client.sendTask('c.slow', ['next', ledger, 10], {}, { dedupeKey: 'k' });
    assert.notEqual(next.id, first.id, 'the dead task no longer holds the key');
    assert.equal(await next.get({ timeout: 20 }), 'next');
  } finally {
    await client.close();
  }
});

it('a retried deduped task holds its key while it waits for and runs its next attempt; a failed one frees it', async () => {
  const brokerUrl = `sqlite://${join(tmp.dir, 'r.db')}`;
  const record = join(tmp.dir, 'record');
  const w = await startWorker({ brokerUrl, app: RATE_APP, args: ['-c', '2'], env: { ASYNX_TEST_RECORD: record } });
  workers.push(w);
  const client = new Asynx({ brokerUrl, configFile: false });
  try {
    await assertRetryKeepsKey(client, record);
  } finally {
    await client.close();
  }
});
