// Placeholders: the worker and multi expanders of spec §7, and node name splitting.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { expandMultiTemplate, expandWorkerTemplate, splitNodeName } from '../../src/process/placeholders.js';
import { UsageError } from '../../src/errors.js';

test('splitNodeName adds the host and splits full names', () => {
  assert.deepEqual(splitNodeName('w1', 'george.example.com'), { full: 'w1@george.example.com', short: 'w1', host: 'george.example.com', domain: 'example.com' });
  assert.deepEqual(splitNodeName('foo@%h', 'vm'), { full: 'foo@vm', short: 'foo', host: 'vm', domain: '' });
  assert.deepEqual(splitNodeName('a@', 'vm'), { full: 'a@', short: 'a', host: '', domain: '' });
});

test('worker expansion: main process and pool children', () => {
  const node = 'w1@george.example.com';
  assert.equal(expandWorkerTemplate('n=%n h=%h d=%d p=%p i=%i I=%I', node), 'n=w1 h=george.example.com d=example.com p=w1@george.example.com i=0 I=');
  assert.equal(expandWorkerTemplate('/log/%n%I.log', node, 3), '/log/w1-3.log');
  assert.equal(expandWorkerTemplate('%i', node, 2), '2');
  assert.equal(expandWorkerTemplate('100%%-%n', node), '100%-w1');
  assert.equal(expandWorkerTemplate('50% off', node), '50% off');
});

test('unknown placeholder is a usage error (exit 64)', () => {
  assert.throws(() => expandWorkerTemplate('%x.log', 'w1@h'), (err: unknown) => err instanceof UsageError && err.exitCode === 64 && /%x/.test(err.message));
  assert.throws(() => expandMultiTemplate('%q', splitNodeName('w1', 'h')), UsageError);
});

test('multi expansion follows the multi column of the table', () => {
  const node = splitNodeName('asynx1', 'george.example.com');
  assert.equal(expandMultiTemplate('n=%n h=%h d=%d p=%p N=%N i=%i I=%I', node), 'n=asynx1 h=asynx1@george.example.com d=george.example.com p=asynx1@george.example.com N=asynx1 i=%i I=%I');
  assert.equal(expandMultiTemplate('a%%n', node), 'a%n');
  assert.equal(expandMultiTemplate('a%%n', node, 'keep'), 'a%%n');
  // kept escapes survive the worker's pass as a literal %
  assert.equal(expandWorkerTemplate(expandMultiTemplate('./%n-100%%%I.log', node, 'keep'), node.full), './asynx1-100%.log');
});
