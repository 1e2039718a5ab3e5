// The threads pool (-P threads) through real worker processes on SQLite: results, parallel CPU work, hard time
// limits, a thread that dies, revoke --terminate, recycling, config overrides reaching the threads.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, afterEach, describe, it } from 'node:test';
import { openControlClient, type ControlClient } from '../../src/control/client.js';
import { Asynx, RemoteTaskError, TaskRevokedError } from '../../src/index.js';
import { childPidsOf } from '../helpers/process.js';
import { tempDir, waitFor } from '../helpers/tmp.js';
import { startWorker, type RunningWorker } from '../helpers/worker.js';

const POOLS_APP = new URL('../fixtures/pools-app.mjs', import.meta.url).pathname;

type Where = { pid: number; threadId: number };
type Span = Where & { start: number; end: number };

describe('threads pool', () => {
  const tmp = tempDir('asynx-threads-');
  let n = 0;
  const workers: RunningWorker[] = [];
  const clients: Asynx[] = [];
  const controls: ControlClient[] = [];
  async function setup(args: string[], extra: string[] = []) {
    const brokerUrl = `sqlite://${join(tmp.dir, `t${++n}.db`)}`;
    const node = `th${n}@sqlite`;
    const w = await startWorker({ brokerUrl, app: POOLS_APP, args: ['-P', 'threads', '-n', node, ...args, ...extra] });
    workers.push(w);
    const c = new Asynx({ brokerUrl, configFile: false });
    clients.push(c);
    return { w, c, brokerUrl, node };
  }
  const run = async <T>(c: Asynx, name: string, args: unknown[] = [], timeout = 15) => (await c.sendTask<T>(name, args)).get({ timeout });
  const failure = async (c: Asynx, name: string, args: unknown[] = []) => {
    const err = await run(c, name, args).catch((e: unknown) => e);
    assert.ok(err instanceof RemoteTaskError, `${name} fails with a RemoteTaskError, got ${String(err)}`);
    return err;
  };
  /** The thread ids of a -c 2 pool: two tasks sent together run on its two threads at once. */
  const threadIds = async (c: Asynx) => {
    const sent = await Promise.all([c.sendTask<Span>('pools.span', [300]), c.sendTask<Span>('pools.span', [300])]);
    const spans = await Promise.all(sent.map((r) => r.get({ timeout: 15 })));
    return new Set(spans.map((s) => s.threadId));
  };
  afterEach(async () => {
    for (const ctl of controls.splice(0)) await ctl.close();
    for (const c of clients.splice(0)) await c.close();
    for (const w of workers.splice(0)) await w.stop('SIGKILL');
  });
  after(() => tmp.cleanup());

  it('runs tasks in threads of the worker process: results, failures, parallel CPU work, no child processes', async () => {
    const { w, c } = await setup(['-c', '2']);
    assert.match(w.output(), /concurrency: 2 \(threads\)/);
    assert.equal(await run(c, 'pools.add', [1, 2]), 3);
    const err = await failure(c, 'pools.boom');
    assert.equal(err.name, 'TypeError');
    assert.match(err.message, /kaput/);
    const at = await run<Where>(c, 'pools.where');
    assert.equal(at.pid, w.pid, 'the task ran in the worker process');
    assert.ok(at.threadId > 0, 'in a worker thread, not the main thread');
    assert.deepEqual(childPidsOf(w.pid), [], 'no pool child processes');
    // Two CPU-bound tasks of 800 ms each on two threads: both started before either finished.
    const sent = await Promise.all([c.sendTask<Span>('pools.span', [800]), c.sendTask<Span>('pools.span', [800])]);
    const [a, b] = await Promise.all(sent.map((r) => r.get({ timeout: 15 })));
    assert.ok(a && b);
    assert.notEqual(a.threadId, b.threadId, 'two different threads');
    assert.ok(a.start < b.end && b.start < a.end, `the two runs overlap in time: [${a.start}, ${a.end}] and [${b.start}, ${b.end}]`);
  });

  it('a hard time limit ends only that thread: TimeLimitExceeded, the other task finishes, a new thread replaces it', async () => {
    const { w, c } = await setup(['-c', '2']);
    const before = await threadIds(c);
    assert.equal(before.size, 2);
    const calm = await c.sendTask<Span>('pools.span', [1800]);
    const spin = await c.sendTask('pools.spin', [10_000]);
    const err = await spin.get({ timeout: 15 }).catch((e: unknown) => e);
    assert.ok(err instanceof RemoteTaskError);
    assert.equal(err.name, 'TimeLimitExceeded');
    const kept = await calm.get({ timeout: 15 });
    assert.ok(before.has(kept.threadId), 'the task on the other thread ran to its end');
    const afterIds = await waitFor('a replacement thread', async () => {
      const ids = await threadIds(c);
      return ids.size === 2 && [...ids].some((id) => !before.has(id)) ? ids : null;
    }, 15_000, 0);
    assert.ok(afterIds.has(kept.threadId), 'the thread that was not over its limit is still the same');
    assert.match(w.output(), /Hard time limit \(1s\) exceeded for pools\.spin/);
  });

  it('process.exit() or an uncaught exception in a task: WorkerLostError, and the pool keeps working', async () => {
    const { w, c } = await setup(['-c', '1']);
    const exited = await failure(c, 'pools.exit');
    assert.equal(exited.name, 'WorkerLostError');
    assert.match(exited.message, /exit code 3/);
    assert.equal(await run(c, 'pools.add', [2, 2]), 4);
    const thrown = await failure(c, 'pools.uncaught');
    assert.equal(thrown.name, 'WorkerLostError');
    assert.match(thrown.message, /uncaught RangeError: nobody catches this/);
    assert.equal(await run(c, 'pools.add', [3, 3]), 6);
    assert.equal(w.proc.exitCode, null, 'the worker process is alive');
    assert.match(w.output(), /Pool thread 1 \(thread id \d+\) exited unexpectedly: exit code 3; replacing it/);
  });

  it('inspect stats as Celery\'s thread pool; revoke --terminate of a running task ends its thread: REVOKED, the thread is replaced', async () => {
    const { w, c, brokerUrl, node } = await setup(['-c', '1']);
    const ctl = await openControlClient(brokerUrl);
    controls.push(ctl);
    const ask = async (method: string, args: Record<string, unknown> = {}) => (await ctl.broadcast(method, args, { destination: [node], timeoutMs: 5000 }))[0]![node];
    // Celery's thread pool in `inspect stats`: its size and threads, no processes.
    assert.deepEqual(((await ask('stats')) as { pool: unknown }).pool, { 'max-concurrency': 1, threads: 1 });
    const first = await run<Where>(c, 'pools.where');
    const r = await c.sendTask('pools.busy', [8000]);
    const active = await waitFor('the task to run', async () => ((await ask('active')) as Array<{ id: string; worker_pid: number }>).find((t) => t.id === r.id), 10_000, 50);
    assert.equal(active.worker_pid, w.pid, 'a thread runs in the worker process');
    assert.deepEqual(await ask('revoke', { task_id: [r.id], terminate: true, signal: 'SIGTERM' }), { ok: `terminate: ${r.id}` });
    await assert.rejects(r.get({ timeout: 10 }), TaskRevokedError);
    assert.equal(await r.state(), 'REVOKED');
    await waitFor('the terminate log line', () => w.output().includes(`Terminated pools.busy[${r.id}] (SIGTERM)`), 10_000);
    const next = await run<Where>(c, 'pools.where');
    assert.notEqual(next.threadId, first.threadId, 'a new thread took the slot');
  });

  it('--max-tasks-per-child recycles threads; config overrides after -- reach the threads', async () => {
    const { w, c } = await setup(['-c', '1', '--max-tasks-per-child', '2'], ['--', 'prefetchMultiplier=3']);
    const ids: number[] = [];
    for (let i = 0; i < 4; i++) ids.push((await run<Where>(c, 'pools.where')).threadId);
    assert.equal(ids[0], ids[1]);
    assert.notEqual(ids[1], ids[2]);
    assert.equal(ids[2], ids[3]);
    assert.match(w.output(), /Recycling pool thread 1 \(thread id \d+\): max tasks per child \(2\) reached/);
    assert.equal(await run(c, 'pools.config', ['prefetchMultiplier']), 3, 'a thread resolved the override');
  });

  it('--max-memory-per-child recycles a thread whose heap and buffers grew past the limit', async () => {
    const { w, c } = await setup(['-c', '1', '--max-memory-per-child', '100000']);
    const small = await run<Where>(c, 'pools.hog', [1]);
    assert.equal((await run<Where>(c, 'pools.where')).threadId, small.threadId, 'under the limit: the same thread');
    const big = await run<Where>(c, 'pools.hog', [150]);
    const next = await run<Where>(c, 'pools.where');
    assert.notEqual(next.threadId, big.threadId);
    assert.match(w.output(), /thread memory \(heap \+ buffers\) \d+ KiB over max memory per child \(100000 KiB\)/);
  });
});
