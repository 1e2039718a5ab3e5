// AMQP acks made in one callback and its promise chains go out as few frames (`multiple` for a run of consecutive
// delivery tags): every delivery is settled exactly once under out-of-order completion, checked on the broker.

import assert from 'node:assert/strict';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { buildTaskMessage } from '../../src/protocol/codec.js';
import { AmqpTransport } from '../../src/transports/amqp.js';
import type { Delivery } from '../../src/transports/transport.js';
import { rabbitSkip, startRabbit, type RabbitNode } from '../helpers/rabbitmq.js';
import { waitFor } from '../helpers/tmp.js';

const skip = rabbitSkip();
let node: RabbitNode | null = null;
before(async () => {
  if (!skip) node = await startRabbit();
});
after(async () => {
  await node?.dispose();
});

/** `[ready, unacknowledged]` of a queue, as the broker counts them. */
async function counts(queue: string): Promise<[number, number]> {
  const out = await node!.ctl(['list_queues', 'name', 'messages_ready', 'messages_unacknowledged', '--no-table-headers', '-q']);
  const line = out.split('\n').find((l) => l.split(/\s+/)[0] === queue);
  if (!line) return [-1, -1];
  const [, ready, unacked] = line.trim().split(/\s+/);
  return [Number(ready), Number(unacked)];
}

/** A fixed shuffle (no randomness in a test). */
function shuffled<T>(xs: T[]): T[] {
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = (i * 7919 + 13) % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

describe('AMQP multiple ack', { skip }, () => {
  test('60 deliveries settled out of order (acks in bursts, requeues between): each once, fewer frames than acks', async () => {
    const t = new AmqpTransport(node!.url, { connectTimeoutMs: 5_000, publishTimeoutMs: 5_000 });
    const queue = 'multi-ack';
    const got: Delivery[] = [];
    try {
      await t.declareQueue(queue);
      for (let i = 0; i < 60; i++) await t.publish(queue, buildTaskMessage('t.x', [i], {}).message);
      const c = await t.consume([queue], 60, (d) => got.push(d));
      await waitFor('60 deliveries', () => got.length === 60, 10_000, 10);
      // No more deliveries (the requeued ones must stay in the queue); held ones are settled on the channel.
      await c.cancel();
      // 0-19 in order in one turn (one frame), 20-49 shuffled in bursts of 5 with a requeue of every
      // seventh between them (each a frame of its own, sent at once), 50-59 one per turn, last first.
      const requeued = new Set<number>();
      await Promise.all(got.slice(0, 20).map((d) => t.ack(d)));
      const middle = shuffled(got.slice(20, 50));
      for (let i = 0; i < middle.length; i += 5) {
        const burst = middle.slice(i, i + 5);
        const acks: Promise<void>[] = [];
        for (const d of burst) {
          const n = got.indexOf(d);
          if (n % 7 === 0) {
            requeued.add(n);
            acks.push(t.reject(d, { requeue: true }));
          } else acks.push(t.ack(d));
        }
        await Promise.all(acks);
        await nextTurn();
      }
      for (const d of got.slice(50).reverse()) {
        await t.ack(d);
        await nextTurn();
      }
      // Acking twice is a no-op, never a second frame (the broker would close the channel: unknown tag).
      await t.ack(got[0]!);
      await nextTurn(); // the queued acks are sent once the promise chains of their callback settle
      const acked = 60 - requeued.size;
      assert.equal(t.ackStats.messages, acked, 'every acked delivery counted once');
      assert.ok(t.ackStats.frames < acked, `fewer frames (${t.ackStats.frames}) than acked messages (${acked})`);
      // The requeued ones come back to the queue; nothing stays unacknowledged, nothing is lost.
      await waitFor('the broker settled everything', async () => {
        const [ready, unacked] = await counts(queue);
        return unacked === 0 && ready === requeued.size;
      }, 15_000, 200);
      assert.deepEqual(await counts(queue), [requeued.size, 0]);
    } finally {
      await t.close();
    }
  });
});
