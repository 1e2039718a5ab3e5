// One pool conformance suite (issue 11): every worker behaviour, through real `asynx worker -P <kind>` processes, per pool kind and broker.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { openControlClient, type ControlClient } from '../../src/control/client.js';
import type { CeleryEvent } from '../../src/events/event.js';
import { receiveEvents, type EventReceiver } from '../../src/events/receiver.js';
import { Asynx, RemoteTaskError, TaskRevokedError, type AsyncResult } from '../../src/index.js';
import { POOL_KINDS, type PoolKind } from '../../src/worker/pool/task-pool.js';
import { assertEventShape } from './celery-events.js';
import { childPidsOf, isAlive, waitGone } from './process.js';
import { rabbitSkip, startRabbit, type RabbitNode } from './rabbitmq.js';
import { tempDir, waitFor } from './tmp.js';
import { waitForStatus } from './worker-events.js';
import { startWorker, type RunningWorker } from './worker.js';

export const CONFORMANCE_APP = fileURLToPath(new URL('../fixtures/conformance-app.mjs', import.meta.url));

/** The broker a suite runs on. */
export type ConformanceBroker = 'sqlite' | 'amqp';

/** `<task id> <what>` lines a fixture task wrote to its ledger file. */
function ledger(file: string): Array<[string, string]> {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  return text.split('\n').filter(Boolean).map((l) => {
    const at = l.indexOf(' ');
    return [l.slice(0, at), l.slice(at + 1)];
  });
}

/** How many times task `id` noted `what`. */
function noted(file: string, id: string, what: string): number {
  return ledger(file).filter(([i, w]) => i === id && w === what).length;
}

/** SIGKILL of the main process and its pool children (the whole node), as `kill -9` or the OOM killer would. */
async function kill9Node(w: RunningWorker): Promise<void> {
  const pids = [w.pid, ...childPidsOf(w.pid)];
  for (const pid of pids) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  assert.ok(await waitGone(pids, 10_000), 'the killed node is gone');
  await w.exited;
}

/** The rejection of `r.get()` (null when it resolved). */
async function failureOf(r: AsyncResult<unknown>, timeout = 15): Promise<unknown> {
  return r.get({ timeout }).then(() => null, (e: unknown) => e);
}

/** Is an in-process kind: no pool child to kill, so hard limits and terminate take the documented alternatives. */
const inProcess = (kind: PoolKind) => kind === 'async' || kind === 'solo';

/** `ASYNX_CONFORMANCE_POOLS=prefork,async` narrows a run to those kinds (while working on one pool); unset: all. */
function selectedKinds(kinds: readonly PoolKind[]): readonly PoolKind[] {
  const only = (process.env.ASYNX_CONFORMANCE_POOLS ?? '').split(',').map((k) => k.trim()).filter(Boolean);
  return only.length ? kinds.filter((k) => only.includes(k)) : kinds;
}

/**
 * Runs the conformance suite on `broker` for each of `kinds`: for each kind a main worker (`-c 4`, solo `-c 1`,
 * `-E`) shared by the cases that allow it, and short-lived workers for kill, warm and cold shutdown.
 */
export function poolConformance(broker: ConformanceBroker, kinds: readonly PoolKind[] = POOL_KINDS): void {
  const skip = broker === 'amqp' ? rabbitSkip() : false;
  describe(`pool conformance on ${broker}`, { skip, timeout: 600_000 }, () => {
    const tmp = tempDir(`asynx-pools-${broker}-`);
    let rabbit: RabbitNode | null = null;
    const workers: RunningWorker[] = [];
    let files = 0;
    before(async () => {
      if (broker === 'amqp') rabbit = await startRabbit();
    });
    after(async () => {
      try {
        for (const w of workers) if (isAlive(w.pid)) await kill9Node(w).catch(() => undefined);
        await rabbit?.dispose();
      } finally {
        tmp.cleanup();
      }
    });
    const brokerUrlFor = (kind: PoolKind) => (broker === 'amqp' ? rabbit!.url : `sqlite://${join(tmp.dir, `${kind}.db`)}`);
    const newLedger = (label: string) => join(tmp.dir, `${label}-${++files}.log`);

    for (const kind of selectedKinds(kinds)) {
      describe(`-P ${kind}`, () => {
        const c = kind === 'solo' ? 1 : 4;
        const NODE = `main-${kind}@conformance`;
        const mainQueue = `pc-${kind}-main`;
        let brokerUrl = '';
        let main: RunningWorker;
        let client: Asynx;
        let control: ControlClient;
        let receiver: EventReceiver;
        const seen: CeleryEvent[] = [];

        const start = async (args: string[], env: NodeJS.ProcessEnv = {}) => {
          const w = await startWorker({ brokerUrl, app: CONFORMANCE_APP, cwd: tmp.dir, args: ['-P', kind, ...args], env });
          workers.push(w);
          return w;
        };
        const send = <T = unknown>(name: string, args: unknown[], opts: { queue?: string; kwargs?: Record<string, unknown>; taskId?: string } = {}) =>
          client.sendTask<T>(name, args, opts.kwargs ?? {}, { queue: opts.queue ?? mainQueue, ...(opts.taskId ? { taskId: opts.taskId } : {}) });
        /** The main node's reply to one command. */
        const ask = async (method: string, args: Record<string, unknown> = {}) => {
          const replies = await control.broadcast(method, args, { destination: [NODE], timeoutMs: 5000 });
          assert.equal(replies.length, 1, `${method}: ${JSON.stringify(replies)}`);
          return replies[0]![NODE] as Record<string, unknown> & { ok?: string; error?: string };
        };
        const stats = async () => (await ask('stats')) as unknown as { pool: { 'max-concurrency': number; processes: number[] }; pid: number };
        /** `c` tasks that each return only once all `c` run at the same time: every slot takes work. */
        const allSlotsRun = async (label: string) => {
          const file = newLedger(`${kind}-${label}`);
          const rs = await Promise.all(Array.from({ length: c }, () => send<number>('c.barrier', [file, c])));
          assert.deepEqual(await Promise.all(rs.map((r) => r.get({ timeout: 20 }))), rs.map(() => c), `all ${c} slots run tasks at once`);
        };
        const started = (file: string, id: string) => waitFor(`${id} started`, () => noted(file, id, 'start') > 0, 15_000);

        before(async () => {
          brokerUrl = brokerUrlFor(kind);
          main = await start(['-n', NODE, '-c', String(c), '-Q', mainQueue, '-E']);
          client = new Asynx({ brokerUrl, configFile: false });
          control = await openControlClient(brokerUrl, { cwd: tmp.dir });
          receiver = await receiveEvents(brokerUrl, (e) => seen.push(e), { cwd: tmp.dir });
        });
        after(async () => {
          await receiver?.close();
          await control?.close();
          await client?.close();
          if (main && isAlive(main.pid)) assert.equal(await main.stop('SIGTERM'), 0, `${kind}: warm shutdown of the main worker exits 0\n${main.output().slice(-2000)}`);
        });

        test('the worker says which pool it runs', () => {
          assert.match(main.output(), new RegExp(`concurrency: ${c} \\(${kind}\\)`));
        });

        test('success: args and kwargs reach the task, the result is stored', async () => {
          const r = await send('c.echo', [1, 'two', [3]], { kwargs: { k: 4 } });
          assert.deepEqual(await r.get({ timeout: 15 }), [1, 'two', [3], { k: 4 }]);
          assert.equal(await r.state(), 'SUCCESS');
        });

        test('failure: the exception type, message and traceback', async () => {
          const r = await send('c.boom', []);
          const err = await failureOf(r);
          assert.ok(err instanceof RemoteTaskError, String(err));
          assert.equal(err.name, 'TypeError');
          assert.equal(err.message, 'kaput');
          assert.match(err.remoteTraceback ?? '', /TypeError: kaput/);
          assert.equal(await r.state(), 'FAILURE');
        });

        test('retry with countdown, then success (same id, retries + 1)', async () => {
          const file = newLedger(`${kind}-retry`);
          const t0 = Date.now();
          const r = await send<number>('c.flaky', [file, 1]);
          assert.equal(await r.get({ timeout: 15 }), 1);
          assert.deepEqual(ledger(file), [[r.id, 'attempt 0'], [r.id, 'attempt 1']]);
          assert.ok(Date.now() - t0 >= 300, 'the countdown of 0.3 s: never run early');
        });

        test('soft time limit: the task sees its signal abort (SoftTimeLimitExceeded)', async () => {
          const file = newLedger(`${kind}-soft`);
          const r = await send('c.soft', [file, 10_000]);
          const err = await failureOf(r);
          assert.ok(err instanceof RemoteTaskError, String(err));
          assert.equal(err.name, 'SoftTimeLimitExceeded');
          assert.equal(noted(file, r.id, 'aborted'), 1, 'the task saw its signal abort');
        });

        if (!inProcess(kind)) {
          test('hard time limit: the running code is killed (TimeLimitExceeded), every slot takes tasks again', async () => {
            const file = newLedger(`${kind}-hard`);
            // Busy for 1.5 s, ignoring every signal, under a 1 s limit.
            const r = await send('c.spin', [file, 1500]);
            await started(file, r.id);
            const t0 = Date.now();
            const err = await failureOf(r);
            assert.ok(err instanceof RemoteTaskError, String(err));
            assert.equal(err.name, 'TimeLimitExceeded');
            assert.equal(await (await send<number>('c.add', [1, 2])).get({ timeout: 15 }), 3);
            await sleep(Math.max(0, t0 + 1800 - Date.now()));
            assert.equal(noted(file, r.id, 'end'), 0, 'the spinning code was stopped: it never reached its end');
            await allSlotsRun('hard-after');
          });
        } else {
          test('hard time limit (documented alternative): TimeLimitExceeded, and a warning that the code could not be stopped', async () => {
            const file = newLedger(`${kind}-hard`);
            // Awaits 4 s ignoring its signal, under a 1 s limit: nothing in one event loop can stop it.
            const r = await send('c.holdLimited', [file, 4000]);
            const err = await failureOf(r);
            assert.ok(err instanceof RemoteTaskError, String(err));
            assert.equal(err.name, 'TimeLimitExceeded');
            await waitFor('the warning that the code could not be stopped', () => main.output().split('\n').some((l) => l.includes(r.id) && /could not be stopped/i.test(l)), 5_000);
            assert.equal(await (await send<number>('c.add', [1, 2])).get({ timeout: 15 }), 3);
            // Documented: the slot is freed at the limit (the abandoned code keeps running beside the new tasks).
            await allSlotsRun('hard-after');
          });
        }

        if (!inProcess(kind)) {
          test('a CPU-bound task leaves the node responsive: remote control answers while it runs', async () => {
            const file = newLedger(`${kind}-busy`);
            const r = await send<number>('c.busy', [file, 1500]);
            await started(file, r.id);
            assert.deepEqual(await ask('ping'), { ok: 'pong' });
            assert.equal(noted(file, r.id, 'end'), 0, 'ping was answered while the task was still busy');
            assert.equal(await r.get({ timeout: 15 }), 1500);
          });
        } else {
          test('a CPU-bound task blocks the loop (documented alternative): the lag is detected and reported, naming the task', async () => {
            const file = newLedger(`${kind}-busy`);
            // Quick tasks end on the loop just before the blocking one starts: the warning must still name the blocker.
            const quick = await Promise.all(Array.from({ length: 12 }, (_, i) => send<number>('c.add', [i, 0])));
            const r = await send<number>('c.busy', [file, 1500]);
            assert.deepEqual(await Promise.all(quick.map((q) => q.get({ timeout: 15 }))), quick.map((_, i) => i));
            assert.equal(await r.get({ timeout: 15 }), 1500);
            const lagLines = () => main.output().split('\n').filter((l) => /event loop was blocked/.test(l));
            await waitFor('the event-loop lag warning naming the task', () => lagLines().some((l) => l.includes(r.id)), 3_000).catch((err: Error) => {
              throw new Error(`${err.message}; ${r.id} ran; lag lines: ${JSON.stringify(lagLines())}; log tail:\n${main.output().slice(-1500)}`);
            });
            assert.deepEqual(await ask('ping'), { ok: 'pong' });
          });
        }

        test('revoke before start: the task never runs and ends REVOKED', async () => {
          const file = newLedger(`${kind}-revoke`);
          const id = `rv-${kind}-${Date.now()}`;
          assert.deepEqual(await ask('revoke', { task_id: [id] }), { ok: `tasks ${id} flagged as revoked` });
          const r = await send('c.mark', [file], { taskId: id });
          await assert.rejects(r.get({ timeout: 15 }), TaskRevokedError);
          assert.equal(await r.state(), 'REVOKED');
          const after = await send('c.mark', [file]);
          assert.equal(await after.get({ timeout: 15 }), true);
          assert.deepEqual(ledger(file), [[after.id, 'ran']], 'the revoked task never ran');
        });

        if (!inProcess(kind)) {
          test('revoke --terminate of a running task: its code is killed, REVOKED', async () => {
            const file = newLedger(`${kind}-terminate`);
            const r = await send('c.hold', [file, 1500]);
            await started(file, r.id);
            const t0 = Date.now();
            assert.deepEqual(await ask('revoke', { task_id: [r.id], terminate: true }), { ok: `terminate: ${r.id}` });
            await assert.rejects(r.get({ timeout: 15 }), TaskRevokedError);
            assert.equal(await r.state(), 'REVOKED');
            await waitFor('the terminate log line', () => main.output().includes(`Terminated c.hold[${r.id}]`), 5_000);
            await sleep(Math.max(0, t0 + 1800 - Date.now()));
            assert.equal(noted(file, r.id, 'end'), 0, 'the terminated code never reached its end');
            assert.equal(await (await send<number>('c.add', [2, 2])).get({ timeout: 15 }), 4);
            await allSlotsRun('terminate-after');
          });
        } else {
          test('revoke --terminate of a running task (documented alternative): its signal aborts, REVOKED', async () => {
            const file = newLedger(`${kind}-terminate`);
            const r = await send('c.wait', [file, 60_000]);
            await started(file, r.id);
            assert.deepEqual(await ask('revoke', { task_id: [r.id], terminate: true }), { ok: `terminate: ${r.id}` });
            await assert.rejects(r.get({ timeout: 15 }), TaskRevokedError);
            assert.equal(await r.state(), 'REVOKED');
            assert.equal(noted(file, r.id, 'aborted'), 1, 'the task saw its signal abort');
            assert.equal(await (await send<number>('c.add', [2, 2])).get({ timeout: 15 }), 4);
            await allSlotsRun('terminate-after');
          });
        }

        test('Celery task events with -E: received, started, succeeded / failed', async () => {
          const ok = await send('c.add', [20, 22]);
          const bad = await send('c.boom', []);
          assert.equal(await ok.get({ timeout: 15 }), 42);
          await failureOf(bad);
          const types = (id: string) => seen.filter((e) => e.uuid === id && e.hostname === NODE).map((e) => e.type);
          await waitFor('the final events', () => types(ok.id).includes('task-succeeded') && types(bad.id).includes('task-failed'), 10_000);
          assert.deepEqual(types(ok.id), ['task-received', 'task-started', 'task-succeeded']);
          assert.deepEqual(types(bad.id), ['task-received', 'task-started', 'task-failed']);
          assert.equal(seen.find((e) => e.uuid === ok.id && e.type === 'task-succeeded')!.result, '42');
          assert.match(String(seen.find((e) => e.uuid === bad.id && e.type === 'task-failed')!.exception), /TypeError\('kaput'\)/);
          // Whatever runs the task (a child, a thread, the loop), the events come from the node: its name and pid.
          for (const e of seen.filter((x) => x.uuid === ok.id || x.uuid === bad.id)) assertEventShape(e, { hostname: NODE, pid: main.pid });
        });

        test('inspect stats answers with the pool size; inspect active lists a running task', async () => {
          const s = await stats();
          assert.equal(s.pid, main.pid);
          assert.equal(s.pool['max-concurrency'], c);
          if (kind === 'prefork') assert.deepEqual([...s.pool.processes].sort(), childPidsOf(main.pid).sort());
          // Threads and the in-process pools run in the worker process (async answers in eventlet's shape, without `processes`).
          else assert.ok((s.pool.processes ?? []).every((p) => p === main.pid), `in the worker's own process: ${JSON.stringify(s.pool)}`);
          const file = newLedger(`${kind}-active`);
          const r = await send<number>('c.wait', [file, 1000]);
          await started(file, r.id);
          const active = (await ask('active')) as unknown as Array<{ id: string; name: string; worker_pid: number }>;
          const mine = active.find((t) => t.id === r.id);
          assert.ok(mine, `active lists the running task: ${JSON.stringify(active)}`);
          assert.equal(mine.name, 'c.wait');
          if (kind === 'prefork') assert.ok(childPidsOf(main.pid).includes(mine.worker_pid), `worker_pid ${mine.worker_pid} is a pool child`);
          else assert.equal(mine.worker_pid, main.pid, 'in-process: the worker_pid is the worker itself');
          assert.equal(await r.get({ timeout: 15 }), 1000);
        });

        if (kind !== 'solo') {
          test('pool_grow / pool_shrink change how many tasks run at once', async () => {
            assert.deepEqual(await ask('pool_grow', { n: 2 }), { ok: 'pool will grow' });
            await waitFor('max-concurrency 6', async () => (await stats()).pool['max-concurrency'] === 6, 15_000, 100);
            // Six tasks that each return only once six of them run at the same time.
            const file = newLedger(`${kind}-grow`);
            const rs = await Promise.all(Array.from({ length: 6 }, () => send<number>('c.barrier', [file, 6])));
            assert.deepEqual(await Promise.all(rs.map((r) => r.get({ timeout: 20 }))), [6, 6, 6, 6, 6, 6]);
            assert.deepEqual(await ask('pool_shrink', { n: 2 }), { ok: 'pool will shrink' });
            await waitFor('max-concurrency back to 4', async () => (await stats()).pool['max-concurrency'] === 4, 15_000, 100);
            if (kind === 'prefork') await waitFor('four children', () => childPidsOf(main.pid).length === 4, 15_000);
          });
        } else {
          test('pool_grow / pool_shrink (documented refusal): solo runs one task at a time, the size stays 1', async () => {
            const grow = await ask('pool_grow', { n: 1 });
            assert.equal(typeof grow.error, 'string', `pool_grow is refused: ${JSON.stringify(grow)}`);
            const shrink = await ask('pool_shrink', { n: 1 });
            assert.equal(typeof shrink.error, 'string', `pool_shrink is refused: ${JSON.stringify(shrink)}`);
            assert.equal((await stats()).pool['max-concurrency'], 1);
            assert.equal(await (await send<number>('c.add', [3, 3])).get({ timeout: 15 }), 6);
          });
        }

        test(`many tasks at -c ${c} all complete exactly once`, async () => {
          const file = newLedger(`${kind}-many`);
          const n = kind === 'solo' ? 20 : 60;
          const rs = await Promise.all(Array.from({ length: n }, () => send<boolean>('c.mark', [file])));
          const values = await Promise.all(rs.map((r) => r.get({ timeout: 30 })));
          assert.ok(values.every((v) => v === true));
          const ran = ledger(file).map(([id]) => id);
          assert.equal(ran.length, n, 'n runs in all');
          assert.deepEqual([...ran].sort(), rs.map((r) => r.id).sort(), 'each task ran exactly once');
        });

        if (kind === 'async') {
          test('-P async -c 100 runs 100 tasks at once', async () => {
            const queue = `pc-${kind}-hundred`;
            const w = await start(['-n', `hundred-${kind}@conformance`, '-c', '100', '-Q', queue]);
            try {
              const file = newLedger(`${kind}-hundred`);
              // Each returns only once all 100 have started: order, not a stopwatch.
              const rs = await Promise.all(Array.from({ length: 100 }, () => send<number>('c.barrier', [file, 100, 15_000], { queue })));
              const values = await Promise.all(rs.map((r) => r.get({ timeout: 30 }).catch((e: Error) => e.message)));
              assert.deepEqual(values, rs.map(() => 100));
            } finally {
              assert.equal(await w.stop('SIGTERM'), 0);
            }
          });
        }

        test('USR1 lists the running task; HUP restarts the pool in place once it finished (same pid), and every slot runs tasks', async () => {
          const file = newLedger(`${kind}-hup`);
          const r = await send<number>('c.wait', [file, 800]);
          await started(file, r.id);
          main.proc.kill('SIGUSR1');
          await waitFor('the USR1 dump', () => main.output().includes(`c.wait[${r.id}] running for`), 5_000);
          const restarts = () => main.output().split('\n').filter((l) => /restarted\.$/.test(l)).length;
          const before = restarts();
          const kids = childPidsOf(main.pid);
          main.proc.kill('SIGHUP');
          await waitFor('the pool restarted', () => restarts() > before, 20_000);
          assert.equal(noted(file, r.id, 'end'), 1, 'the running task finished before the restart');
          assert.equal(await r.get({ timeout: 5 }), 800);
          assert.ok(isAlive(main.pid), 'the same worker process');
          if (kind === 'prefork') assert.ok(childPidsOf(main.pid).every((p) => !kids.includes(p)), 'new children');
          await allSlotsRun('after-hup');
        });

        // Short-lived nodes on their own queue and pidfile: the whole node is killed, or shut down.
        describe('node lifecycle', () => {
          const lifeQueue = `pc-${kind}-life`;
          const pidfile = () => join(tmp.dir, `${kind}-life.pid`);
          // -c 2 (solo 1): two tasks at once is all these cases need, and fewer prefork children start faster.
          const lifeC = Math.min(c, 2);
          const life = () => start(['-n', `life-${kind}@conformance`, '-c', String(lifeC), '-Q', lifeQueue, '--pidfile', pidfile()], { ASYNX_VISIBILITY_TIMEOUT: '1' });
          let w: RunningWorker | null = null;

          test('kill -9 of the node mid-run: acks late is redelivered and runs again; acks early ends FAILURE (WorkerLostError) and never runs again', async () => {
            const file = newLedger(`${kind}-kill`);
            // Solo runs one task at a time: one kill per task.
            const rounds = lifeC >= 2 ? [['late', 'early']] : [['late'], ['early']];
            const sent: Record<string, AsyncResult<unknown>> = {};
            w = await life();
            for (const round of rounds) {
              for (const which of round) sent[which] = await send(which === 'late' ? 'c.waitLate' : 'c.wait', [file, which === 'late' ? 1500 : 60_000], { queue: lifeQueue });
              for (const which of round) await started(file, sent[which]!.id);
              await kill9Node(w);
              w = await life();
            }
            const late = sent.late!;
            const early = sent.early!;
            assert.equal(await late.get({ timeout: 30 }), 1500);
            assert.equal(noted(file, late.id, 'start'), 2, 'acks late: ran again after the kill');
            assert.equal(noted(file, late.id, 'end'), 1);
            const err = await failureOf(early, 20);
            assert.ok(err instanceof Error, String(err));
            assert.ok(err.name === 'WorkerLostError' || /WorkerLostError|was killed/.test(err.message), `${err.name}: ${err.message}`);
            assert.equal(noted(file, early.id, 'start'), 1, 'acks early: never ran again');
          });

          // Cold first, on the node the kill left; its successor then shows the warm shutdown (one start fewer).
          test('cold shutdown (second TERM) puts the running task back; the next worker runs it', async () => {
            const node = w ?? (await life());
            w = null;
            const file = newLedger(`${kind}-cold`);
            const r = await send<number>('c.wait', [file, 1500], { queue: lifeQueue });
            await started(file, r.id);
            node.proc.kill('SIGTERM');
            await waitForStatus(pidfile(), 'warm shutdown', (s) => s.state === 'draining');
            node.proc.kill('SIGTERM');
            assert.equal(await node.exited, 1, 'cold shutdown exits 1');
            assert.equal(noted(file, r.id, 'end'), 0, 'it did not finish on the stopped node');
            w = await life();
            assert.equal(await r.get({ timeout: 30 }), 1500);
            assert.equal(noted(file, r.id, 'start'), 2, 'it ran again on the next worker');
          });

          test('warm shutdown (TERM) finishes the running task before exit', async () => {
            const node = w ?? (await life());
            w = null;
            const file = newLedger(`${kind}-warm`);
            const r = await send<number>('c.wait', [file, 800], { queue: lifeQueue });
            await started(file, r.id);
            assert.equal(await node.stop('SIGTERM'), 0);
            assert.equal(noted(file, r.id, 'end'), 1, 'the running task finished before the exit');
            assert.equal(await r.get({ timeout: 5 }), 800);
          });
        });
      });
    }
  });
}
