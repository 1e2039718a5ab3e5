// untilConfirmed: the error of a publish that ran out of time names the publish's whole timeout.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { untilConfirmed } from '../../src/amqp/confirm-channel.js';
import { BrokerUnavailableError } from '../../src/errors.js';

const retry = (deadline: number) => ({ deadline, timeoutMs: 5000, what: 'publish task t1', url: 'amqp://guest:secret@127.0.0.1:5999//', closed: () => false });

test('a last step that had 64 ms left reports the 5000 ms timeout of the publish (the bench saw "within 64 ms")', async () => {
  const deadline = Date.now() - 1; // every earlier step used the time: the last one timed out past the deadline
  const step = new BrokerUnavailableError('Cannot publish task t1: RabbitMQ at amqp://127.0.0.1:5999 is connected but did not answer within 64 ms. Check the broker', { facts: { timedOut: true } });
  await assert.rejects(
    untilConfirmed(async () => {
      throw step;
    }, retry(deadline)),
    (err: unknown) => err instanceof BrokerUnavailableError && /did not answer within 5000 ms\./.test(err.message) && !/64 ms/.test(err.message) && err.facts.timedOut === true,
  );
});

test('before the deadline a timed-out step is passed on as it is, and other errors are never rewritten', async () => {
  const step = new BrokerUnavailableError('Cannot publish task t1: RabbitMQ at x is not reachable within 900 ms', { facts: { timedOut: true } });
  await assert.rejects(untilConfirmed(async () => { throw step; }, retry(Date.now() + 60_000)), (err: unknown) => err === step);
  const other = new BrokerUnavailableError('Cannot publish task t1: the AMQP client is closed within 3 ms');
  await assert.rejects(untilConfirmed(async () => { throw other; }, retry(Date.now() - 1)), (err: unknown) => err === other);
});
