// Rate-limit parsing and the worker's gates: precedence (call > remote control > task), spacing, a new rate via control.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { resolveRateLimit } from '../../src/app/rate-limit.js';
import { resolveTaskOptions } from '../../src/app/task-options.js';
import type { Pending } from '../../src/worker/pending.js';
import { RateGates } from '../../src/worker/rate-gates.js';
import { TaskLimits } from '../../src/worker/task-limits.js';

const pending = (task: string, rateLimit?: string, header?: unknown) =>
  ({ req: { task, headers: header === undefined ? {} : { asynx_rate_limit: header } }, def: { options: resolveTaskOptions(task, rateLimit ? { rateLimit } : {}) } }) as unknown as Pending;

describe('rate limits', () => {
  test("Celery's rate strings: per second, minute, hour; a bare number per second; 0 or '' = none", () => {
    assert.deepEqual(resolveRateLimit('t', '10/s'), { text: '10/s', perSecond: 10, global: false });
    assert.equal(resolveRateLimit('t', '100/m')!.perSecond, 100 / 60);
    assert.equal(resolveRateLimit('t', '2/h')!.perSecond, 2 / 3600);
    assert.equal(resolveRateLimit('t', 5)!.perSecond, 5);
    assert.equal(resolveRateLimit('t', '5')!.perSecond, 5);
    assert.deepEqual(resolveRateLimit('t', { rate: '1/m', global: true }), { text: '1/m', perSecond: 1 / 60, global: true });
    for (const none of [0, '0', '', '0/m', undefined, null]) assert.equal(resolveRateLimit('t', none), null);
  });

  test('the call beats remote control, which beats the task; 0 by control turns the task limit off', () => {
    const limits = new TaskLimits();
    const gates = new RateGates(limits, null, () => undefined, () => undefined);
    assert.deepEqual(gates.limitOf(pending('a', '10/s')), { key: 'a', intervalMs: 100, global: false });
    assert.equal(gates.limitOf(pending('b')), null);
    limits.setRate('a', '2/s');
    assert.equal(gates.limitOf(pending('a', '10/s'))!.intervalMs, 500);
    assert.deepEqual(gates.limitOf(pending('a', '10/s', { rate: '1/s', global: false })), { key: 'a@1/s', intervalMs: 1000, global: false });
    limits.setRate('a', '0');
    assert.equal(gates.limitOf(pending('a', '10/s')), null);
    // A malformed header from another client: the task's own limit applies.
    limits.setRate('b', '4/s');
    assert.equal(gates.limitOf(pending('b', undefined, { rate: 'fast' }))!.intervalMs, 250);
    // global without a shared store (RabbitMQ) is never applied as global here (the worker refused it at start).
    assert.equal(gates.limitOf(pending('c', undefined, { rate: '1/s', global: true }))!.global, false);
  });

  test('capacity 1: one start, then none until the interval passed; a new rate by control starts afresh', () => {
    let woken = 0;
    const limits = new TaskLimits();
    const gates = new RateGates(limits, null, () => woken++, () => undefined);
    const limit = gates.limitOf(pending('a', '1/h'))!;
    assert.equal(gates.tryStart(limit), true);
    assert.equal(gates.tryStart(limit), false);
    assert.ok(gates.projectedStart(limit, 2) - Date.now() > 3 * 3600_000 - 1000, 'two waiting ahead: three intervals');
    limits.setRate('a', '100/s');
    gates.rateChanged('a');
    assert.equal(woken, 1);
    assert.equal(gates.tryStart(gates.limitOf(pending('a', '1/h'))!), true);
    gates.close();
  });
});
