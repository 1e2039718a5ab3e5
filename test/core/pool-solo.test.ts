// The solo pool through a real worker on SQLite: one task at a time in the worker process, for debugging.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { openControlClient, type ControlClient } from '../../src/control/client.js';
import { Asynx, RemoteTaskError } from '../../src/index.js';
import { tempDir, waitFor } from '../helpers/tmp.js';
import { startWorker, type RunningWorker } from '../helpers/worker.js';

const APP = fileURLToPath(new URL('../fixtures/inprocess-app.mjs', import.meta.url));
const NODE = 'solo@test';

describe('solo pool (-P solo)', () => {
  const tmp = tempDir('asynx-solo-');
  const brokerUrl = `sqlite://${join(tmp.dir, 'broker.db')}`;
  let worker: RunningWorker;
  let client: Asynx;
  let control: ControlClient;

  before(async () => {
    worker = await startWorker({ brokerUrl, app: APP, args: ['-P', 'solo', '-c', '3', '--max-tasks-per-child', '5', '-n', NODE] });
    client = new Asynx({ brokerUrl, configFile: false });
    control = await openControlClient(brokerUrl);
  });
  after(async () => {
    await control?.close();
    await client?.close();
    await worker?.stop('SIGKILL');
    tmp.cleanup();
  });

  const ask = async (method: string, args: Record<string, unknown> = {}) => {
    const replies = await control.broadcast(method, args, { destination: [NODE], timeoutMs: 5000 });
    assert.equal(replies.length, 1, `${method}: ${JSON.stringify(replies)}`);
    return replies[0]![NODE];
  };

  test('-c above 1 and per-child options are ignored with a warning; it runs with concurrency 1', () => {
    const out = worker.output();
    assert.match(out, /WARNING.*The solo pool runs one task at a time: -c 3 is ignored/);
    assert.match(out, /WARNING.*--max-tasks-per-child does not apply to the solo pool/);
    assert.match(out, /concurrency: 1 \(solo\)/);
  });

  test('runs one task at a time, in order, in the worker process; results and failures stored', async () => {
    const file = join(tmp.dir, 'ledger.txt');
    const sent = [];
    for (const label of ['a', 'b', 'c', 'd']) sent.push(await client.sendTask('t.ledger', [file, 150, label]));
    assert.deepEqual(await Promise.all(sent.map((r) => r.get({ timeout: 15 }))), ['a', 'b', 'c', 'd']);
    assert.deepEqual(readFileSync(file, 'utf8').trim().split('\n'), ['start a', 'end a', 'start b', 'end b', 'start c', 'end c', 'start d', 'end d']);
    assert.equal(await (await client.sendTask<number>('t.pid')).get({ timeout: 10 }), worker.pid);
    const err = await (await client.sendTask('t.boom')).get({ timeout: 10 }).catch((e: unknown) => e);
    assert.ok(err instanceof RemoteTaskError);
    assert.equal(err.name, 'TypeError');
  });

  test('stats in the shape of Celery\'s solo pool; pool_grow and pool_shrink are refused', async () => {
    const s = (await ask('stats')) as { pool: Record<string, unknown>; prefetch_count: number };
    assert.deepEqual(s.pool, { 'max-concurrency': 1, processes: [worker.pid], 'max-tasks-per-child': null, 'put-guarded-by-semaphore': true, timeouts: [], 'abandoned-tasks': 0 });
    assert.equal(s.prefetch_count, 4);
    for (const method of ['pool_grow', 'pool_shrink']) {
      const reply = (await ask(method, { n: 1 })) as { error?: string };
      assert.match(reply.error ?? '', /the solo pool runs one task at a time and cannot be resized/, method);
    }
    assert.equal(((await ask('stats')) as { pool: Record<string, unknown> }).pool['max-concurrency'], 1);
  });

  test('warm shutdown (TERM) lets the running task finish', async () => {
    const r = await client.sendTask('t.stamp', [1200]);
    await waitFor('the task to run', async () => ((await ask('active')) as Array<{ id: string }>).some((t) => t.id === r.id), 10_000, 50);
    assert.equal(await worker.stop('SIGTERM'), 0);
    assert.equal(await r.state(), 'SUCCESS');
    assert.match(worker.output(), /Warm shutdown/);
  });
});
