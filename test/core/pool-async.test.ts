// The async pool through real workers on SQLite: tasks on the worker's own loop, up to -c at once, and what
// it does where it cannot kill code (hard limit, terminate), blocks of the loop, stray errors, warm shutdown.

import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { openControlClient, type ControlClient } from '../../src/control/client.js';
import { Asynx, RemoteTaskError, TaskRevokedError, Worker } from '../../src/index.js';
import { tempDir, waitFor } from '../helpers/tmp.js';
import { nextEvent } from '../helpers/worker-events.js';
import { runCli, startWorker, type RunningWorker } from '../helpers/worker.js';

const APP = fileURLToPath(new URL('../fixtures/inprocess-app.mjs', import.meta.url));
const NODE = 'async@test';

type Stamp = { pid: number; start: number; end: number };
type PoolStats = { 'max-concurrency': number; 'free-threads': number; 'running-threads': number; 'abandoned-tasks': number };

describe('async pool (-P async -c 50)', () => {
  const tmp = tempDir('asynx-async-');
  const brokerUrl = `sqlite://${join(tmp.dir, 'broker.db')}`;
  let worker: RunningWorker;
  let client: Asynx;
  let control: ControlClient;

  before(async () => {
    worker = await startWorker({ brokerUrl, app: APP, args: ['-P', 'async', '-c', '50', '-n', NODE] });
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
  const stats = async () => (await ask('stats')) as { pool: PoolStats; prefetch_count: number; pid: number };
  const failure = async (r: { get(o: { timeout: number }): Promise<unknown> }) => {
    const err = await r.get({ timeout: 15 }).catch((e: unknown) => e);
    assert.ok(err instanceof RemoteTaskError, `a RemoteTaskError: ${String(err)}`);
    return err;
  };

  test('50 sleeping tasks all start before any finishes, in the worker process; stats in the eventlet shape', async () => {
    assert.match(worker.output(), /concurrency: 50 \(async\)/);
    const sent = await Promise.all(Array.from({ length: 50 }, () => client.sendTask<Stamp>('t.stamp', [600])));
    const stamps = await Promise.all(sent.map((r) => r.get({ timeout: 20 })));
    const lastStart = Math.max(...stamps.map((s) => s.start));
    const firstEnd = Math.min(...stamps.map((s) => s.end));
    assert.ok(lastStart < firstEnd, `every task started (last at ${lastStart}) before the first one ended (${firstEnd})`);
    assert.deepEqual([...new Set(stamps.map((s) => s.pid))], [worker.pid], 'every task ran in the worker process itself');
    const s = await stats();
    assert.equal(s.pid, worker.pid);
    assert.deepEqual(s.pool, { 'max-concurrency': 50, 'free-threads': 50, 'running-threads': 0, 'abandoned-tasks': 0 });
    assert.equal(s.prefetch_count, 200);
  });

  test('results, failures and retries as on prefork', async () => {
    assert.equal(await (await client.sendTask('t.add', [2, 3])).get({ timeout: 10 }), 5);
    const err = await failure(await client.sendTask('t.boom'));
    assert.equal(err.name, 'TypeError');
    assert.equal(await (await client.sendTask('t.flaky', [2])).get({ timeout: 10 }), 2);
    assert.match(worker.output(), /t\.flaky\[[^\]]+\] retry: retry in 0\.050s/);
  });

  test('soft time limit aborts the task signal in the worker process and fails it with SoftTimeLimitExceeded', async () => {
    const file = join(tmp.dir, 'soft.txt');
    const err = await failure(await client.sendTask('t.soft', [file]));
    assert.equal(err.name, 'SoftTimeLimitExceeded');
    assert.equal(readFileSync(file, 'utf8'), 'SoftTimeLimitExceeded\n', 'the task saw its signal abort with the soft limit as reason');
  });

  test('hard time limit: TimeLimitExceeded; code that ignores its signal is reported, counted, then seen to end', async () => {
    const file = join(tmp.dir, 'stubborn.txt');
    const stubborn = await client.sendTask('t.stubborn', [2500, file]);
    const obedient = await client.sendTask('t.obedient');
    assert.equal((await failure(stubborn)).name, 'TimeLimitExceeded');
    assert.equal((await failure(obedient)).name, 'TimeLimitExceeded');
    assert.match(worker.output(), new RegExp(`Hard time limit \\(0\\.5s\\) exceeded for t\\.stubborn\\[${stubborn.id}\\]: its signal was aborted`));
    await waitFor('the could-not-stop line', () => worker.output().includes(`Task t.stubborn[${stubborn.id}] could not be stopped (hard time limit (0.5s))`), 10_000);
    assert.equal((await stats()).pool['abandoned-tasks'], 1, 'the still-running code is counted');
    assert.equal(existsSync(file), false, 'it is still running');
    await waitFor('the abandoned code to end', () => worker.output().includes(`The abandoned code of t.stubborn[${stubborn.id}] ended`), 10_000);
    assert.equal(readFileSync(file, 'utf8'), 'ended\n');
    assert.equal((await stats()).pool['abandoned-tasks'], 0);
    assert.equal(await stubborn.state(), 'FAILURE', 'its late return value was dropped');
    assert.ok(!worker.output().includes(`t.obedient[${obedient.id}] could not be stopped`), 'a task that stops on its signal is not reported');
  });

  test('revoke with terminate: REVOKED at once, and the warning when the code keeps running', async () => {
    const r = await client.sendTask('t.deaf', [2000]);
    const running = await waitFor('the task to run', async () => ((await ask('active')) as Array<{ id: string; worker_pid: number }>).find((t) => t.id === r.id), 10_000, 50);
    assert.equal(running.worker_pid, worker.pid);
    assert.deepEqual(await ask('revoke', { task_id: [r.id], terminate: true }), { ok: `terminate: ${r.id}` });
    await assert.rejects(r.get({ timeout: 10 }), TaskRevokedError);
    assert.equal(await r.state(), 'REVOKED');
    await waitFor('the could-not-stop line', () => worker.output().includes(`Task t.deaf[${r.id}] could not be stopped (revoked with terminate (SIGTERM))`), 10_000);
    assert.match(worker.output(), new RegExp(`Terminated t\\.deaf\\[${r.id}\\] \\(SIGTERM\\)`));
  });

  test('a task that blocks the loop for 1.5 s is reported by name; the worker answers inspect ping afterwards', async () => {
    const r = await client.sendTask('t.busy', [1500]);
    assert.equal(await r.get({ timeout: 15 }), 1500);
    await waitFor('the loop-lag warning', () => new RegExp(`WARNING.*event loop was blocked for at least 1\\.\\d+s while [^\\n]*t\\.busy\\[${r.id}\\][^\\n]*-P threads or -P prefork`).test(worker.output()), 5000);
    const ping = await runCli(['inspect', 'ping', '-d', NODE, '--timeout', '5'], { ASYNX_BROKER_URL: brokerUrl });
    assert.equal(ping.code, 0, ping.stderr);
    assert.match(ping.stdout, /pong/);
  });

  test('a stray rejection and a throw from a timer in task code are logged; the worker keeps going', async () => {
    const r = await client.sendTask('t.stray');
    assert.equal(await r.get({ timeout: 10 }), 'returned');
    await waitFor('both error lines', () => worker.output().includes('Unhandled promise rejection in the worker process: RangeError: stray rejection') && worker.output().includes('Uncaught exception in the worker process: SyntaxError: thrown from a timer'), 5000);
    assert.match(worker.output(), new RegExp(`stray rejection; tasks on the loop lately: t\\.stray\\[${r.id}\\]`));
    assert.equal(await (await client.sendTask('t.add', [1, 1])).get({ timeout: 10 }), 2);
    assert.equal(worker.proc.exitCode, null, 'the worker is still running');
  });

  test('pool_grow and pool_shrink change how many tasks run at once, and prefetch follows', async () => {
    assert.deepEqual(await ask('pool_grow', { n: 10 }), { ok: 'pool will grow' });
    await waitFor('the pool to grow', async () => (await stats()).pool['max-concurrency'] === 60, 5000, 50);
    assert.equal((await stats()).prefetch_count, 240);
    assert.deepEqual(await ask('pool_shrink', { n: 55 }), { ok: 'pool will shrink' });
    await waitFor('the pool to shrink', async () => (await stats()).pool['max-concurrency'] === 5, 5000, 50);
    // 12 tasks of 400 ms on 5 slots: never more than 5 at once (start/end stamps, not a stopwatch).
    const stamps = await Promise.all((await Promise.all(Array.from({ length: 12 }, () => client.sendTask<Stamp>('t.stamp', [400])))).map((r) => r.get({ timeout: 20 })));
    const most = Math.max(...stamps.map((s) => stamps.filter((o) => o.start <= s.start && s.start < o.end).length));
    assert.equal(most, 5, `at most 5 ran at once: ${most}`);
    await ask('pool_grow', { n: 45 });
  });

  test('warm shutdown (TERM) waits for the tasks in flight and stores their results', async () => {
    const sent = await Promise.all(Array.from({ length: 20 }, () => client.sendTask<Stamp>('t.stamp', [1500])));
    await waitFor('20 tasks running', async () => (await stats()).pool['running-threads'] === 20, 10_000, 50);
    assert.equal(await worker.stop('SIGTERM'), 0);
    assert.match(worker.output(), /Warm shutdown/);
    for (const r of sent) assert.equal(await r.state(), 'SUCCESS');
  });
});

describe('async pool: the HTTP dispatch task at -c 100', () => {
  const tmp = tempDir('asynx-async-http-');
  const brokerUrl = `sqlite://${join(tmp.dir, 'broker.db')}`;
  let server: Server;
  let base = '';
  let worker: RunningWorker;
  let client: Asynx;
  let inFlight = 0;
  let most = 0;

  before(async () => {
    server = createServer((req, res) => {
      inFlight++;
      most = Math.max(most, inFlight);
      // Each answer takes 300 ms: only calls made at the same time overlap.
      setTimeout(() => {
        inFlight--;
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(`hello ${new URL(req.url ?? '/', 'http://x').searchParams.get('i')}`);
      }, 300);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    base = `http://127.0.0.1:${port}`;
    worker = await startWorker({ brokerUrl, app: APP, args: ['-P', 'async', '-c', '100'], env: { ASYNX_HTTP_ALLOWED_HOSTS: `127.0.0.1:${port}` } });
    client = new Asynx({ brokerUrl, configFile: false });
  });
  after(async () => {
    await client?.close();
    await worker?.stop();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    tmp.cleanup();
  });

  test('300 calls: every one answered, up to 100 in flight at once from one worker process', async () => {
    const sent = await Promise.all(Array.from({ length: 300 }, (_, i) => client.http.dispatch(`${base}/hi`, { params: { i } })));
    const results = await Promise.all(sent.map((r) => r.get({ timeout: 60 })));
    results.forEach((res, i) => {
      assert.equal(res.status, 200);
      assert.equal(res.body, `hello ${i}`);
    });
    assert.ok(most >= 50 && most <= 100, `the server saw ${most} calls at once (at most -c 100)`);
  });
});

describe('async pool: pool:loop:blocked from a Worker in this process', () => {
  test('the event names the blocked time, the threshold and the task that was on the loop', async () => {
    const tmp = tempDir('asynx-async-lag-');
    const brokerUrl = `sqlite://${join(tmp.dir, 'broker.db')}`;
    const app = new Asynx({ brokerUrl, configFile: false });
    app.task('t.busy', (ms: number) => {
      const end = Date.now() + ms;
      while (Date.now() < end) {
        /* busy */
      }
      return ms;
    });
    const client = new Asynx({ brokerUrl, configFile: false });
    const worker = new Worker(app, { appUrl: pathToFileURL(APP).href, pool: 'async', concurrency: 4, nodeName: 'lag@test', loopLagWarn: '300ms' });
    try {
      await worker.start();
      const blocked = nextEvent(worker, 'pool:loop:blocked', (e) => e.tasks.length > 0);
      const r = await client.sendTask('t.busy', [700]);
      const e = await blocked;
      assert.equal(e.pool, 'async');
      assert.equal(e.thresholdMs, 300);
      assert.ok(e.blockedMs >= 300 && e.blockedMs <= 1500, `blocked ${e.blockedMs} ms`);
      assert.deepEqual(e.tasks, [{ taskId: r.id, name: 't.busy' }]);
      assert.equal(await r.get({ timeout: 10 }), 700);
    } finally {
      await worker.stop();
      await client.close();
      tmp.cleanup();
    }
  });
});
