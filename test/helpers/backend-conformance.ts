// One ResultBackend conformance suite, run against every result store (SQLite, rpc://): the contract in backend.ts.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, test } from 'node:test';
import { AsynxError, TimeoutError } from '../../src/errors.js';
import type { ResultBody } from '../../src/protocol/message.js';
import type { ResultBackend, ResultTarget } from '../../src/results/backend.js';
import { waitFor } from './tmp.js';

/** How the suite gets backends for one store. */
export interface BackendFactory {
  /**
   * A new, unconnected backend on the same store each call. The suite uses two: a client that waits
   * and a worker that stores to the client's `replyTo`, as two processes would.
   */
  make: () => Promise<ResultBackend>;
  /** A backend whose results expire after `expiresMs`, or the reason expiry does not apply. */
  expiring: ((expiresMs: number) => Promise<ResultBackend>) | { skip: string };
}

const body = (taskId: string, status: string, result: unknown = null): ResultBody => ({ task_id: taskId, status, result, traceback: null, children: [] });

/** Runs the suite; `opts.skip` skips it all with a reason (e.g. no RabbitMQ here). */
export function runBackendConformance(name: string, factory: () => BackendFactory, opts: { skip?: string | false } = {}): void {
  describe(`ResultBackend conformance: ${name}`, { skip: opts.skip ?? false }, () => {
    const open: ResultBackend[] = [];
    const track = (b: ResultBackend): ResultBackend => {
      open.push(b);
      return b;
    };
    /** A connected client and a connected worker on one store. */
    const pair = async (): Promise<{ client: ResultBackend; worker: ResultBackend; to: (taskId: string) => ResultTarget }> => {
      const client = track(await factory().make());
      const worker = track(await factory().make());
      await client.connect();
      await worker.connect();
      return { client, worker, to: (taskId) => ({ taskId, replyTo: client.replyTo, taskName: 't.conf' }) };
    };
    after(async () => {
      for (const b of open) await b.close().catch(() => undefined);
    });

    test('store then get: the client sees what the worker stored; an unknown task is null (PENDING)', async () => {
      const { client, worker, to } = await pair();
      const id = randomUUID();
      assert.equal(await client.get(id), null);
      await worker.store(to(id), body(id, 'SUCCESS', { sum: 3 }));
      const got = await waitFor('the stored result', () => client.get(id), 5_000, 10);
      assert.equal(got.task_id, id);
      assert.equal(got.status, 'SUCCESS');
      assert.deepEqual(got.result, { sum: 3 });
    });

    test('wait resolves on the ready state and reports the states on the way', async () => {
      const { client, worker, to } = await pair();
      const id = randomUUID();
      const seen: string[] = [];
      const waiting = client.wait(id, 10_000, (b) => seen.push(b.status));
      await worker.store(to(id), body(id, 'STARTED'));
      await waitFor('STARTED reported', () => seen.includes('STARTED'), 5_000, 5);
      await worker.store(to(id), body(id, 'FAILURE', { exc_type: 'ValueError', exc_message: ['bad'], exc_module: 'builtins' }));
      const done = await waiting;
      assert.equal(done.status, 'FAILURE');
      assert.deepEqual(seen, ['STARTED', 'FAILURE']);
    });

    test('wait with nothing stored rejects with TimeoutError (asynx.result.timeout) after its timeout, not before', async () => {
      const { client } = await pair();
      const id = randomUUID();
      const t0 = Date.now();
      await assert.rejects(client.wait(id, 300), (err: unknown) => {
        assert.ok(err instanceof TimeoutError, String(err));
        assert.equal(err.code, 'asynx.result.timeout');
        assert.equal(err.facts.taskId, id);
        assert.match(err.message, /state PENDING/);
        return true;
      });
      const took = Date.now() - t0;
      assert.ok(took >= 290 && took < 3_000, `timed out after ${took} ms`);
    });

    test('ready states are final: a late STARTED after SUCCESS does not overwrite it', async () => {
      const { client, worker, to } = await pair();
      const id = randomUUID();
      await worker.store(to(id), body(id, 'SUCCESS', 'done'));
      assert.equal((await client.wait(id, 5_000)).status, 'SUCCESS');
      await worker.store(to(id), body(id, 'STARTED'));
      // A marker stored after the late STARTED, on the same path: once it is in, the STARTED is too.
      const marker = randomUUID();
      await worker.store(to(marker), body(marker, 'SUCCESS'));
      await client.wait(marker, 5_000);
      assert.equal((await client.get(id))?.status, 'SUCCESS');
      assert.equal((await client.wait(id, 1_000)).result, 'done');
    });

    test('forget removes the result: get is null again', async () => {
      const { client, worker, to } = await pair();
      const id = randomUUID();
      await worker.store(to(id), body(id, 'SUCCESS', 1));
      await client.wait(id, 5_000);
      await client.forget(id);
      assert.equal(await client.get(id), null);
    });

    test('results expire: cleanup removes those past their expiry and keeps the others', async (tc) => {
      const f = factory();
      if (!(typeof f.expiring === 'function')) {
        // The documented alternative for a backend without expiry: cleanup removes nothing, ever.
        tc.diagnostic(`no expiry here: ${f.expiring.skip}; asserting that cleanup() removes nothing`);
        const b = track(await f.make());
        await b.connect();
        const id = randomUUID();
        await b.store({ taskId: id, replyTo: b.replyTo }, body(id, 'SUCCESS', 1));
        assert.equal(await b.cleanup(), 0, 'a backend without expiry removes nothing');
        return;
      }
      const b = track(await f.expiring(200));
      await b.connect();
      const [old, fresh] = [randomUUID(), randomUUID()];
      await b.store({ taskId: old, replyTo: b.replyTo }, body(old, 'SUCCESS', 1));
      // Bounded wait on the condition itself: `old` is past its expiry once cleanup removes it.
      await waitFor('the old result to expire', async () => (await b.cleanup()) === 1, 5_000, 50);
      await b.store({ taskId: fresh, replyTo: b.replyTo }, body(fresh, 'SUCCESS', 2));
      assert.equal(await b.cleanup(), 0, 'a fresh result is kept');
      assert.equal(await b.get(old), null);
      assert.equal((await b.get(fresh))?.result, 2);
    });

    test('close is idempotent: the same promise on every call; after close the backend refuses work', async () => {
      const b = track(await factory().make());
      await b.connect();
      const first = b.close();
      const second = b.close();
      assert.equal(first, second, 'close() returns the same promise');
      await first;
      assert.equal(b.close(), first, 'and still the same one after it settled');
      await assert.rejects(b.get(randomUUID()), (err: unknown) => err instanceof AsynxError && /closed/.test(err.message));
    });

    test('close of a backend that never connected resolves', async () => {
      const b = track(await factory().make());
      await b.close();
      await b.close();
    });

    test('close ends a wait in progress with an AsynxError instead of leaving it to its timeout', async () => {
      const b = track(await factory().make());
      await b.connect();
      const t0 = Date.now();
      const ended = assert.rejects(b.wait(randomUUID(), 20_000), (err: unknown) => err instanceof AsynxError && /closed/.test(err.message));
      await b.close();
      await ended;
      assert.ok(Date.now() - t0 < 5_000, 'ended by close, not by its 20 s timeout');
    });
  });
}
