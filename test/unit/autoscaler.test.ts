// The autoscale decision (Celery's rule) and the bounds arithmetic of `autoscale`, `pool_grow`, `pool_shrink`.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Autoscaler, decideScale, type ScaleInput } from '../../src/worker/pool/autoscaler.js';

const base: ScaleInput = { size: 1, qty: 0, max: 4, min: 1, sinceGrowMs: null, keepaliveMs: 30_000 };
const decide = (over: Partial<ScaleInput>) => decideScale({ ...base, ...over });

describe('decideScale', () => {
  it('grows at once to min(qty, max) when reserved + running tasks exceed the pool', () => {
    assert.deepEqual(decide({ qty: 3 }), { action: 'grow', n: 2 });
    assert.deepEqual(decide({ qty: 50 }), { action: 'grow', n: 3 }, 'never past max');
    assert.deepEqual(decide({ qty: 3, sinceGrowMs: 5 }), { action: 'grow', n: 2 }, 'growth ignores the keepalive');
  });

  it('leaves a pool that fits the backlog', () => {
    assert.deepEqual(decide({ size: 1, qty: 1 }), { action: 'none' });
    assert.deepEqual(decide({ size: 4, qty: 9 }), { action: 'none' }, 'at max with more waiting');
    assert.deepEqual(decide({ size: 2, qty: 0, min: 2 }), { action: 'none' }, 'at min');
  });

  it('shrinks to max(qty, min) only once the keepalive has passed since the pool last grew', () => {
    assert.deepEqual(decide({ size: 4, qty: 0, sinceGrowMs: 29_999 }), { action: 'hold' });
    assert.deepEqual(decide({ size: 4, qty: 0, sinceGrowMs: 30_000 }), { action: 'shrink', n: 3 });
    assert.deepEqual(decide({ size: 4, qty: 2, sinceGrowMs: 31_000 }), { action: 'shrink', n: 2 }, 'keeps what the backlog needs');
    assert.deepEqual(decide({ size: 4, qty: 0, min: 3, sinceGrowMs: 31_000 }), { action: 'shrink', n: 1 }, 'never under min');
    assert.deepEqual(decide({ size: 3, qty: 0, sinceGrowMs: null }), { action: 'shrink', n: 2 }, 'a pool that never grew is not held');
  });

  it('keeps at least one process or thread, whatever min says', () => {
    assert.deepEqual(decide({ size: 1, qty: 0, min: 0, sinceGrowMs: 60_000 }), { action: 'none' });
    assert.deepEqual(decide({ size: 3, qty: 0, min: 0, sinceGrowMs: 60_000 }), { action: 'shrink', n: 2 });
  });
});

/** An Autoscaler over a pretend pool whose size changes at once, with a hand-moved clock. */
function scaler(max: number, min: number, keepaliveMs = 1000) {
  const s = { size: min || 1, qty: 0, now: 0, prefetchMax: [] as number[], resizes: [] as number[] };
  const a = new Autoscaler(max, min, keepaliveMs, {
    size: () => s.size,
    qty: () => s.qty,
    resize: (n) => {
      s.resizes.push(n);
      s.size = Math.max(1, s.size + n);
    },
    maxChanged: (m) => s.prefetchMax.push(m),
  }, () => s.now);
  return { a, s };
}

describe('Autoscaler', () => {
  it('grows under a backlog, holds for the keepalive, then shrinks back', () => {
    const { a, s } = scaler(4, 1);
    s.qty = 6;
    assert.deepEqual(a.tick(), { action: 'grow', n: 3 });
    assert.equal(s.size, 4);
    s.qty = 0;
    s.now = 900;
    assert.deepEqual(a.tick(), { action: 'hold' });
    s.now = 1001;
    assert.deepEqual(a.tick(), { action: 'shrink', n: 3 });
    assert.equal(s.size, 1);
    assert.deepEqual(a.info(), { max: 4, min: 1, current: 1, qty: 0 });
  });

  it('update (the autoscale command): a lower max shrinks now, a higher min grows now; prefetch follows max', () => {
    const { a, s } = scaler(4, 1);
    s.size = 4;
    assert.deepEqual(a.update(2, null), [2, 1]);
    assert.equal(s.size, 2);
    assert.deepEqual(s.prefetchMax, [2]);
    assert.deepEqual(a.update(6, 3), [6, 3]);
    assert.equal(s.size, 3);
    assert.deepEqual(s.prefetchMax, [2, 6]);
    assert.deepEqual(a.update(null, null), [6, 3], 'nothing given: the bounds as they are');
  });

  it('pool_grow under autoscale raises max when it must; pool_shrink lowers min when it must', () => {
    const { a, s } = scaler(4, 2);
    s.size = 3;
    a.forceScaleUp(3);
    assert.equal(s.size, 6);
    assert.deepEqual([a.max, a.min], [6, 2]);
    assert.deepEqual(s.prefetchMax, [6]);
    a.forceScaleUp(0);
    assert.equal(s.size, 6, 'n = 0 changes nothing');
    a.forceScaleDown(5);
    assert.equal(s.size, 1);
    assert.deepEqual([a.max, a.min], [6, 1]);
  });

  it('does nothing while the worker says the pool must not be resized', () => {
    const a = new Autoscaler(4, 1, 1000, { size: () => null, qty: () => 10, resize: () => assert.fail('no resize'), maxChanged: () => undefined });
    assert.deepEqual(a.tick(), { action: 'none' });
  });
});
