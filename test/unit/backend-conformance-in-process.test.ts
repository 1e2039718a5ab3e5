// The in-process result backends (eager mode's memory store, 'none'): the parts of the contract they share.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MemoryResultBackend } from '../../src/results/memory.js';
import { NoResultBackend } from '../../src/results/none.js';

const body = (taskId: string, status: string) => ({ task_id: taskId, status, result: null, traceback: null, children: [] });

describe('in-process result backends', () => {
  for (const make of [() => new MemoryResultBackend(), () => new NoResultBackend()]) {
    test(`${make().kind}: close is idempotent (the same promise on every call)`, async () => {
      const b = make();
      await b.connect();
      const first = b.close();
      assert.equal(b.close(), first);
      await first;
      assert.equal(b.close(), first);
    });
  }

  test('memory: ready states are final and forget drops the result', async () => {
    const b = new MemoryResultBackend();
    await b.store({ taskId: 'a' }, body('a', 'SUCCESS'));
    await b.store({ taskId: 'a' }, body('a', 'STARTED'));
    assert.equal((await b.get('a'))?.status, 'SUCCESS');
    assert.equal((await b.wait('a', 10)).status, 'SUCCESS');
    await b.forget('a');
    assert.equal(await b.get('a'), null);
  });
});
