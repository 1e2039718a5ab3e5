// Issue 9: a node killed (kill -9 of main and pool) while running a task never leaves it PENDING forever.
// Acks early: the node's next start on the same pidfile stores FAILURE (WorkerLostError). Acks late: redelivered.

import assert from 'node:assert/strict';
import { after, afterEach, describe, it } from 'node:test';
import { join } from 'node:path';
import { Asynx } from '../../src/index.js';
import { readStatus, statusPathFor } from '../../src/process/status-file.js';
import { childPidsOf, isAlive, waitGone } from '../helpers/process.js';
import { tempDir, waitFor } from '../helpers/tmp.js';
import { startWorker, type RunningWorker } from '../helpers/worker.js';

/** SIGKILL to the main process and its pool children, as the OOM killer or `kill -9` by hand would. */
async function kill9Node(w: RunningWorker): Promise<void> {
  const pids = [w.pid, ...childPidsOf(w.pid)];
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
  assert.ok(await waitGone(pids, 10_000), 'the killed node is gone');
}

describe('worker killed while running a task', () => {
  const tmp = tempDir();
  const workers: RunningWorker[] = [];
  const clients: Asynx[] = [];
  let n = 0;
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
    for (const w of workers.splice(0)) {
      for (const pid of [w.pid, ...childPidsOf(w.pid)]) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    }
  });
  after(() => tmp.cleanup());

  function fresh(env: NodeJS.ProcessEnv = {}) {
    const k = ++n;
    const brokerUrl = `sqlite://${join(tmp.dir, `k${k}.db`)}`;
    const pidfile = join(tmp.dir, `k${k}.pid`);
    const client = new Asynx({ brokerUrl, configFile: false });
    clients.push(client);
    const start = async () => {
      const w = await startWorker({ brokerUrl, args: ['-c', '1', '--pidfile', pidfile], env });
      workers.push(w);
      return w;
    };
    return { client, pidfile, start };
  }

  it('acks early: the next start on the same pidfile stores FAILURE (WorkerLostError) for the task the killed node ran', { timeout: 60_000 }, async () => {
    const { client, pidfile, start } = fresh();
    const first = await start();
    const r = await client.sendTask('t.sleep', [60_000]);
    // On record before its pool child got it.
    await waitFor('the task on record in the status file', () => readStatus(statusPathFor(pidfile))?.running?.some((t) => t.id === r.id && !t.acksLate), 15_000);
    await kill9Node(first);
    const backend = await client.backend();
    assert.equal((await backend.get(r.id))?.status ?? 'PENDING', 'PENDING', 'the kill alone stores nothing');
    const second = await start();
    const body = await waitFor('the FAILURE', async () => {
      const b = await backend.get(r.id);
      return b?.status === 'FAILURE' ? b : null;
    }, 15_000, 50);
    const exc = body.result as { exc_type: string; exc_message: unknown[] };
    assert.equal(exc.exc_type, 'WorkerLostError');
    assert.match(String(exc.exc_message[0]), new RegExp(`worker node pid ${first.pid} was killed while running the task`));
    await assert.rejects(r.get({ timeout: 5 }), (err: Error) => err.name === 'WorkerLostError' || /WorkerLostError|was killed/.test(err.message));
    // Settled: the record is gone from the new node's status file, and the node says what it did.
    await waitFor('the record removed', () => !(readStatus(statusPathFor(pidfile))?.running ?? []).some((t) => t.id === r.id), 5_000);
    await waitFor('the log line', () => /was running when worker node pid \d+ was killed: stored FAILURE/.test(second.output()), 5_000);
    assert.equal(await second.stop('SIGTERM'), 0);
  });

  it('a task that finished before the kill keeps its SUCCESS', { timeout: 60_000 }, async () => {
    const { client, pidfile, start } = fresh();
    const first = await start();
    const done = await client.sendTask('t.add', [2, 3]);
    assert.equal(await done.get({ timeout: 15 }), 5);
    const r = await client.sendTask('t.sleep', [60_000]);
    await waitFor('the task on record', () => readStatus(statusPathFor(pidfile))?.running?.some((t) => t.id === r.id), 15_000);
    await kill9Node(first);
    // A record naming a finished task as well (the kill fell inside the 100 ms refresh): settling leaves it alone.
    const s = readStatus(statusPathFor(pidfile))!;
    const { writeStatus } = await import('../../src/process/status-file.js');
    writeStatus(statusPathFor(pidfile), { ...s, running: [...(s.running ?? []), { id: done.id, name: 't.add', replyTo: null, acksLate: false, startedAt: Date.now() }] });
    const second = await start();
    const backend = await client.backend();
    await waitFor('the FAILURE of the running one', async () => (await backend.get(r.id))?.status === 'FAILURE', 15_000, 50);
    assert.equal((await backend.get(done.id))?.status, 'SUCCESS');
    assert.equal(await second.stop('SIGTERM'), 0);
  });

  it('acks late: the task the killed node ran is redelivered and succeeds', { timeout: 60_000 }, async () => {
    const { client, pidfile, start } = fresh({ ASYNX_ACKS_LATE: '1', ASYNX_VISIBILITY_TIMEOUT: '1s' });
    const first = await start();
    const r = await client.sendTask('t.sleep', [1_500]);
    await waitFor('the task on record', () => readStatus(statusPathFor(pidfile))?.running?.some((t) => t.id === r.id && t.acksLate), 15_000);
    await kill9Node(first);
    const second = await start();
    assert.equal(await r.get({ timeout: 30 }), 1_500);
    assert.equal(await second.stop('SIGTERM'), 0);
  });
});
