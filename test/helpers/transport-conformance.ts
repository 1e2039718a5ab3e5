// One Transport conformance suite, run against every broker (SQLite, AMQP): the contract in transport.ts.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { AsynxError } from '../../src/errors.js';
import { buildTaskMessage, decodeTaskMessage } from '../../src/protocol/codec.js';
import type { WireMessage } from '../../src/protocol/message.js';
import type { Consumer, Delivery, Transport } from '../../src/transports/transport.js';
import { waitFor } from './tmp.js';

/**
 * Watches for `ms` and fails if `happened()` turns true: for asserting that something does NOT happen
 * (no delivery beyond prefetch). Not a synchronisation point: every positive wait uses waitFor.
 */
async function staysFalse(what: string, happened: () => boolean, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    assert.equal(happened(), false, what);
    await sleep(Math.min(25, Math.max(0, until - Date.now())));
  }
  assert.equal(happened(), false, what);
}

/** Collects deliveries from a consumer, with bounded waits. */
export class Collector {
  readonly got: Delivery[] = [];
  private waiters: Array<() => void> = [];
  consumer: Consumer | null = null;

  readonly onDelivery = (d: Delivery): void => {
    this.got.push(d);
    for (const w of this.waiters) w();
  };

  async start(t: Transport, queues: string[], prefetch: number): Promise<this> {
    this.consumer = await t.consume(queues, prefetch, this.onDelivery);
    return this;
  }

  /** Resolves once `n` deliveries arrived; fails after `timeoutMs`. */
  async waitFor(n: number, timeoutMs = 10_000): Promise<Delivery[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.got.length < n) {
      const left = deadline - Date.now();
      if (left <= 0) assert.fail(`expected ${n} deliveries within ${timeoutMs} ms, got ${this.got.length}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, Math.min(left, 200));
        function done() {
          clearTimeout(timer);
          resolve();
        }
        this.waiters.push(done);
      });
      this.waiters = [];
    }
    return this.got;
  }

  async cancel(): Promise<void> {
    await this.consumer?.cancel();
    this.consumer = null;
  }
}

function msg(task: string, args: unknown[], opts: Parameters<typeof buildTaskMessage>[3] = {}): WireMessage {
  return buildTaskMessage(task, args, {}, opts).message;
}

function argsOf(d: Delivery): unknown[] {
  return decodeTaskMessage(d.message).args;
}

/**
 * Runs the suite. `makeTransport` returns a new, unconnected transport on the same broker
 * each call (some tests use two, as two processes would).
 */
export function runTransportConformance(name: string, makeTransport: () => Promise<Transport>, opts: { skip?: string | false } = {}): void {
  describe(`Transport conformance: ${name}`, { skip: opts.skip ?? false }, () => {
    const open: Transport[] = [];
    const prefix = `conf-${randomBytes(3).toString('hex')}`;
    let n = 0;
    const q = (label: string) => `${prefix}-${++n}-${label}`;
    const make = async () => {
      const t = await makeTransport();
      open.push(t);
      await t.connect();
      return t;
    };
    after(async () => {
      for (const t of open) await t.close().catch(() => undefined);
    });

    test('publish, consume, ack: the message arrives intact and is gone after ack', async () => {
      const t = await make();
      const queue = q('basic');
      const m = msg('t.add', [1, 2], { queue, replyTo: 'reply-here' });
      await t.publish(queue, m);
      assert.equal(await t.count(queue), 1);
      const c = await new Collector().start(t, [queue], 4);
      const [d] = await c.waitFor(1);
      assert.equal(d.queue, queue);
      assert.equal(d.redelivered, false);
      assert.equal(d.deliveryCount, 1);
      assert.equal(d.message.properties.content_type, 'application/json');
      assert.equal(d.message.properties.correlation_id, m.headers.id);
      assert.equal(d.message.properties.reply_to, 'reply-here');
      const req = decodeTaskMessage(d.message);
      assert.equal(req.id, m.headers.id);
      assert.equal(req.task, 't.add');
      assert.deepEqual(req.args, [1, 2]);
      assert.equal(req.headers.root_id, m.headers.root_id);
      assert.equal(req.headers.origin, m.headers.origin);
      assert.equal(req.timeLimit, null, 'no timelimit header: no limit');
      await t.ack(d);
      await c.cancel();
      // The broker applies an ack asynchronously (AMQP acks have no confirm): wait for the count itself.
      await waitFor('the acked message to be gone', async () => (await t.count(queue)) === 0, 5_000, 20);
      assert.equal(await t.count(queue), 0);
    });

    test('prefetch bounds unacknowledged deliveries; an ack makes room', async () => {
      const t = await make();
      const queue = q('prefetch');
      for (let i = 0; i < 5; i++) await t.publish(queue, msg('t.n', [i], { queue }));
      const c = await new Collector().start(t, [queue], 2);
      await c.waitFor(2);
      await staysFalse('no more than prefetch deliveries while none is acked', () => c.got.length > 2, 400);
      assert.equal(c.got.length, 2, 'no more than prefetch deliveries while none is acked');
      await t.ack(c.got[0]);
      await c.waitFor(3);
      for (const d of c.got.slice(1)) await t.ack(d);
      await c.waitFor(5);
      for (const d of c.got.slice(3)) await t.ack(d);
      assert.deepEqual(c.got.map(argsOf).map((a) => a[0]).sort(), [0, 1, 2, 3, 4]);
      await c.cancel();
    });

    test('settling a delivery twice is a no-op, and the transport keeps working', async () => {
      const t = await make();
      const queue = q('double');
      await t.publish(queue, msg('t.n', [1], { queue }));
      const c = await new Collector().start(t, [queue], 2);
      const [d] = await c.waitFor(1);
      await t.ack(d);
      await t.ack(d);
      await t.reject(d, { requeue: true });
      await t.publish(queue, msg('t.n', [2], { queue }));
      const got = await c.waitFor(2);
      assert.deepEqual(argsOf(got[1]), [2]);
      await t.ack(got[1]);
      await c.cancel();
    });

    test('reject with requeue: delivered again, marked redelivered', async () => {
      const t = await make();
      const queue = q('requeue');
      await t.publish(queue, msg('t.n', [7], { queue }));
      const c = await new Collector().start(t, [queue], 1);
      const [d1] = await c.waitFor(1);
      await t.reject(d1, { requeue: true });
      const got = await c.waitFor(2);
      assert.deepEqual(argsOf(got[1]), [7]);
      assert.equal(got[1].redelivered, true);
      assert.ok(got[1].deliveryCount >= 2, `deliveryCount ${got[1].deliveryCount}`);
      await t.ack(got[1]);
      await c.cancel();
    });

    test('reject without requeue: never delivered again', async () => {
      const t = await make();
      const queue = q('dead');
      await t.publish(queue, msg('t.n', [9], { queue }));
      const c = await new Collector().start(t, [queue], 1);
      const [d] = await c.waitFor(1);
      await t.reject(d, { requeue: false, reason: 'test: rejected' });
      // A marker published after the reject: had the message been requeued, it would come first (it goes
      // back to the head of the queue), so once the marker arrives the rejected one has had its chance.
      await t.publish(queue, msg('t.n', ['marker'], { queue }));
      const got = await c.waitFor(2);
      assert.deepEqual(argsOf(got[1]), ['marker']);
      await t.ack(got[1]);
      await waitFor('the marker ack to be applied', async () => (await t.count(queue)) === 0, 5_000, 20);
      assert.equal(c.got.filter((x) => argsOf(x)[0] === 9).length, 1, 'the rejected message was delivered once');
      await c.cancel();
      assert.equal(await t.count(queue), 0);
    });

    test('close hands unsettled deliveries back: another transport gets them (at-least-once)', async () => {
      const t1 = await make();
      const queue = q('handback');
      await t1.publish(queue, msg('t.n', [1], { queue }));
      await t1.publish(queue, msg('t.n', [2], { queue }));
      const c1 = await new Collector().start(t1, [queue], 5);
      await c1.waitFor(2);
      await t1.close();
      const t2 = await make();
      const c2 = await new Collector().start(t2, [queue], 5);
      const got = await c2.waitFor(2);
      assert.deepEqual(got.map(argsOf).map((a) => a[0]).sort(), [1, 2]);
      assert.ok(got.every((d) => d.redelivered));
      for (const d of got) await t2.ack(d);
      await c2.cancel();
    });

    test('cancel stops new deliveries; held ones can still be acked', async () => {
      const t = await make();
      const queue = q('cancel');
      await t.publish(queue, msg('t.n', [1], { queue }));
      const c = await new Collector().start(t, [queue], 1);
      const [d] = await c.waitFor(1);
      await c.cancel();
      await t.publish(queue, msg('t.n', [2], { queue }));
      await staysFalse('no delivery after cancel', () => c.got.length > 1, 300);
      assert.equal(c.got.length, 1);
      await t.ack(d);
      // Only the acked message goes (the ack applies asynchronously on AMQP): wait for the count, bounded.
      await waitFor('one message left after the ack', async () => (await t.count(queue)) === 1, 5_000, 20);
      assert.equal(await t.count(queue), 1);
      assert.equal(await t.purge([queue]), 1);
    });

    test('consumes several queues at once', async () => {
      const t = await make();
      const [qa, qb] = [q('multi-a'), q('multi-b')];
      await t.publish(qa, msg('t.n', ['a'], { queue: qa }));
      await t.publish(qb, msg('t.n', ['b'], { queue: qb }));
      const c = await new Collector().start(t, [qa, qb], 4);
      const got = await c.waitFor(2);
      assert.deepEqual(got.map((d) => d.queue).sort(), [qa, qb].sort());
      for (const d of got) await t.ack(d);
      await c.cancel();
    });

    test('purge removes ready messages and counts them', async () => {
      const t = await make();
      const queue = q('purge');
      for (let i = 0; i < 3; i++) await t.publish(queue, msg('t.n', [i], { queue }));
      assert.equal(await t.count(queue), 3);
      assert.equal(await t.purge([queue]), 3);
      assert.equal(await t.count(queue), 0);
    });

    test('an eta message is not delivered before its eta', async () => {
      const t = await make();
      const queue = q('eta');
      const etaMs = Date.now() + 1500;
      await t.publish(queue, msg('t.n', ['later'], { queue, eta: new Date(etaMs) }));
      await t.publish(queue, msg('t.n', ['now'], { queue }));
      const c = await new Collector().start(t, [queue], 4);
      const got = await c.waitFor(2, 10_000);
      const arrived = Date.now();
      assert.deepEqual(argsOf(got[0]), ['now']);
      assert.deepEqual(argsOf(got[1]), ['later']);
      assert.ok(arrived >= etaMs, `delivered ${etaMs - arrived} ms early`);
      for (const d of got) await t.ack(d);
      await c.cancel();
    });

    test('a non-JSON message is delivered as is, with its content type, for the worker to reject', async () => {
      const t = await make();
      const queue = q('pickle');
      const m = msg('t.n', [1], { queue });
      const pickled: WireMessage = { ...m, properties: { ...m.properties, content_type: 'application/x-python-serialize', content_encoding: 'binary' }, body: '\u0080\u0004\u0095' };
      await t.publish(queue, pickled);
      const c = await new Collector().start(t, [queue], 1);
      const [d] = await c.waitFor(1);
      assert.equal(d.message.properties.content_type, 'application/x-python-serialize');
      assert.throws(() => decodeTaskMessage(d.message), { code: 'asynx.protocol.contentType' });
      await t.reject(d, { requeue: false, reason: 'content type' });
      await c.cancel();
    });

    test('close is idempotent: the same promise on every call, and the transport refuses work after it', async () => {
      const t = await make();
      const queue = q('close');
      await t.publish(queue, msg('t.n', [1], { queue }));
      const c = await new Collector().start(t, [queue], 1);
      await c.waitFor(1);
      const first = t.close();
      const second = t.close();
      assert.equal(first, second, 'close() returns the same promise');
      await first;
      assert.equal(t.close(), first, 'and still the same one after it settled');
      await assert.rejects(t.publish(queue, msg('t.n', [2], { queue })), (err: unknown) => err instanceof AsynxError && /closed/.test(err.message));
      // The held delivery went back: a fresh transport gets it.
      const t2 = await make();
      const c2 = await new Collector().start(t2, [queue], 1);
      const [d] = await c2.waitFor(1);
      assert.deepEqual(argsOf(d), [1]);
      await t2.ack(d);
      await c2.cancel();
    });

    test('close of a transport that never connected resolves', async () => {
      const t = await makeTransport();
      open.push(t);
      await t.close();
      await t.close();
    });

    test('priorities: higher priority first (lower numbers first where the transport says so, as kombu on Redis)', async (tc) => {
      const t = await make();
      if (!t.capabilities.priorities) {
        tc.skip('transport has no priorities');
        return;
      }
      const queue = q('prio');
      await t.declareQueue(queue);
      for (const p of [1, 1, 9, 5]) await t.publish(queue, msg('t.p', [p], { queue, priority: p }));
      const c = await new Collector().start(t, [queue], 1);
      const order: number[] = [];
      for (let i = 0; i < 4; i++) {
        const got = await c.waitFor(i + 1);
        order.push(argsOf(got[i])[0] as number);
        await t.ack(got[i]);
      }
      assert.deepEqual(order, t.capabilities.lowerPriorityFirst ? [1, 1, 5, 9] : [9, 5, 1, 1]);
      await c.cancel();
    });
  });
}
