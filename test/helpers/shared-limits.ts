// Global rate limits and dedupe keys as every broker with a shared store must keep them (SQLite, Redis): the checks
// the broker suites run on their own brokers, with the rate-limit fixture app's record (test/helpers/rate-record.ts).

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { Asynx } from '../../src/index.js';
import { linesOf, readRecord, sendMany } from './rate-record.js';
import { waitFor } from './tmp.js';

/** 30 `r.shared` tasks (5/s, global) on two or more nodes: both run some, and the starts are spaced over all nodes, not per node. */
export async function assertGlobalRate(client: Asynx, record: string, workerPids: number[]): Promise<void> {
  const ids = await sendMany(client, 'r.shared', 30);
  await waitFor('30 shared-limit tasks ended', () => linesOf(readRecord(record), 'r.shared', 'end', ids).length === 30, 30_000, 100);
  const starts = linesOf(readRecord(record), 'r.shared', 'start', ids);
  const nodes = new Set(starts.map((l) => l.workerPid));
  assert.deepEqual([...nodes].sort(), [...workerPids].sort(), 'both nodes ran some');
  const times = starts.map((l) => l.at).sort((a, b) => a - b);
  assert.ok(times[29]! - times[0]! >= 5_500, `30 starts at 5/s combined span ≥ 5.8 s (got ${times[29]! - times[0]!} ms)`);
  // Spaced, not bursts: any 6 consecutive starts span about 1 s (5 intervals of 200 ms), whichever node ran them.
  for (let i = 0; i + 5 < times.length; i++) assert.ok(times[i + 5]! - times[i]! >= 800, `starts ${i}..${i + 5} span ${times[i + 5]! - times[i]!} ms`);
}

/** Clients (one connection each) racing on one key, 5 rounds: every caller gets the one task's id, one message per key. */
export async function assertDedupeRace(apps: Asynx[], queue: string): Promise<void> {
  await Promise.all(apps.map((a) => a.connect()));
  for (let round = 0; round < 5; round++) {
    const ids = await Promise.all(apps.map((a) => a.sendTask('r.plain', [], {}, { dedupeKey: `race-${round}`, queue }).then((r) => r.id)));
    assert.equal(new Set(ids).size, 1, `every caller got the one task's id: ${ids.join(', ')}`);
  }
  assert.equal(await (await apps[0]!.transport()).count(queue), 5, 'one message per key');
}

/**
 * On a queue no worker but the one recording consumes (`celery`): a second send while the task waits (its
 * countdown) or runs sends nothing; after it ended a new one is sent; a dedupeKey of one's own works alike.
 */
export async function assertDedupeLifecycle(client: Asynx, record: string): Promise<void> {
  const id = randomUUID();
  const first = await client.sendTask('r.plain', [800], {}, { taskId: id, dedupe: true, countdown: 1 });
  // Waiting (its countdown): nothing is sent, the existing task's result comes back.
  const again = await client.sendTask('r.plain', [800], {}, { taskId: id, dedupe: true });
  assert.equal(again.id, id);
  assert.equal(await (await client.transport()).count('celery'), 1, 'one message waits, the duplicate was not sent');
  await waitFor('the deduped task started', () => linesOf(readRecord(record), 'r.plain', 'start').some((l) => l.id === id), 10_000, 20);
  // Running (acked early: the message is gone from the queue, the key is held by the worker).
  assert.equal((await client.sendTask('r.plain', [800], {}, { taskId: id, dedupe: true })).id, id);
  assert.equal(await first.get({ timeout: 15 }), 800);
  const runs = () => linesOf(readRecord(record), 'r.plain', 'start').filter((l) => l.id === id).length;
  assert.equal(runs(), 1, 'the duplicates were never sent');
  // The first run's result is stored under the same id: wait for the second run itself.
  assert.equal((await client.sendTask('r.plain', [0], {}, { taskId: id, dedupe: true })).id, id);
  await waitFor('after it ended, the same id is sent again', () => runs() === 2, 10_000, 20);

  // A dedupeKey of one's own: the second call returns the first call's task id.
  const key = `report:${randomUUID()}`;
  const a = await client.sendTask('r.plain', [500], {}, { dedupeKey: key, countdown: 0.5 });
  const b = await client.sendTask('r.plain', [500], {}, { dedupeKey: key });
  assert.equal(b.id, a.id);
  await a.get({ timeout: 15 });
}

const lines = (record: string) => readRecord(record).map((l) => `${l.event} ${l.name}`);

/** A retried deduped task holds its key while it waits for and runs its next attempt; a failed one frees it. */
export async function assertRetryKeepsKey(client: Asynx, record: string): Promise<void> {
  const key = `retry-${randomUUID()}`;
  const first = await client.sendTask('r.retry_once', [3000], {}, { dedupeKey: key });
  await waitFor('the retried attempt started', () => lines(record).some((l) => l.startsWith('attempt1 ')), 20_000, 20);
  const during = await client.sendTask('r.retry_once', [0], {}, { dedupeKey: key });
  assert.equal(during.id, first.id, 'the retried attempt still holds the key');
  assert.equal(await first.get({ timeout: 20 }), 3000);
  const after = await client.sendTask('r.retry_once', [0], {}, { dedupeKey: key });
  assert.notEqual(after.id, first.id, 'freed once it ended');
  await after.get({ timeout: 20 });

  const failedKey = `failed-${randomUUID()}`;
  const failed = await client.sendTask('r.fail', [], {}, { dedupeKey: failedKey });
  await assert.rejects(failed.get({ timeout: 20 }), /no/);
  assert.notEqual((await client.sendTask('r.plain', [0], {}, { dedupeKey: failedKey })).id, failed.id, 'a FAILURE frees the key');
}
