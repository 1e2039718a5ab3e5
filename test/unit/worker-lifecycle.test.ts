// The worker's lifecycle table, its option resolution and its typed event emitter, without processes.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AsynxError, UsageError, resolveWorkerOptions } from '../../src/index.js';
import { WorkerEvents } from '../../src/worker/events.js';
import { Lifecycle, canTransition } from '../../src/worker/lifecycle.js';

describe('worker lifecycle table', () => {
  it('allows the documented paths and emits worker:state with from and to', () => {
    const events = new WorkerEvents();
    const seen: string[] = [];
    events.on('worker:state', (e) => seen.push(`${e.from}>${e.to}`));
    const l = new Lifecycle(events, 'w@h');
    for (const s of ['running', 'draining', 'running', 'draining', 'stopping', 'stopped'] as const) l.to(s);
    assert.deepEqual(seen, ['starting>running', 'running>draining', 'draining>running', 'running>draining', 'draining>stopping', 'stopping>stopped']);
  });

  it('rejects illegal transitions with a coded error and leaves the state alone', () => {
    const l = new Lifecycle(new WorkerEvents(), 'w@h');
    l.to('running');
    assert.throws(() => l.to('starting'), (e: unknown) => e instanceof AsynxError && e.code === 'asynx.worker.illegalTransition');
    assert.equal(l.state, 'running');
    l.to('failed', 'broker gone');
    assert.equal(l.error, 'broker gone');
    for (const to of ['starting', 'running', 'draining', 'stopping', 'stopped'] as const) assert.equal(canTransition('failed', to), false);
    for (const to of ['starting', 'running', 'draining', 'stopping', 'failed'] as const) assert.equal(canTransition('stopped', to), false);
    assert.equal(l.tryTo('running'), false);
  });

  it('a stop during start goes from starting to draining; stopping never returns to running', () => {
    assert.equal(canTransition('starting', 'draining'), true);
    assert.equal(canTransition('stopping', 'running'), false);
  });
});

describe('resolveWorkerOptions', () => {
  it('fills every default and converts durations to ms', () => {
    const r = resolveWorkerOptions({ appUrl: 'file:///app.mjs' });
    assert.equal(r.concurrency, 2);
    assert.deepEqual(r.queues, []);
    assert.equal(r.logger, null);
    assert.equal(r.pidfile, null);
    assert.equal(r.heartbeatIntervalMs, 2000);
    assert.equal(r.childStartTimeoutMs, 30_000);
    assert.match(r.nodeName, /^asynx@/);
    assert.equal(resolveWorkerOptions({ appUrl: 'file:///a', heartbeatInterval: '250ms' }).heartbeatIntervalMs, 250);
    assert.equal(resolveWorkerOptions({ appUrl: 'file:///a', heartbeatInterval: 5 }).heartbeatIntervalMs, 5000);
  });

  it('names the option and value in its errors', () => {
    assert.throws(() => resolveWorkerOptions({ appUrl: 'file:///a', concurrency: 0 }), (e: unknown) => e instanceof UsageError && /concurrency/.test(e.message) && e.facts.option === 'concurrency');
    assert.throws(() => resolveWorkerOptions({ appUrl: 'file:///a', heartbeatInterval: 'soon' }), (e: unknown) => e instanceof UsageError && /heartbeatInterval/.test(e.message));
    assert.throws(() => resolveWorkerOptions({}), (e: unknown) => e instanceof UsageError && e.code === 'asynx.worker.noAppUrl');
    assert.throws(() => resolveWorkerOptions({ appUrl: 'file:///a', nodeName: 'nohost' }), /nodeName/);
  });
});

describe('WorkerEvents', () => {
  it('on() returns an unsubscribe; a throwing listener does not stop the others', () => {
    const events = new WorkerEvents();
    const got: number[] = [];
    events.on('message:restored', () => {
      throw new Error('subscriber bug');
    });
    const off = events.on('message:restored', (e) => got.push(e.count));
    events.emit('message:restored', { count: 1 });
    off();
    events.emit('message:restored', { count: 2 });
    assert.deepEqual(got, [1]);
    assert.equal(events.has('task:received'), false);
  });
});
