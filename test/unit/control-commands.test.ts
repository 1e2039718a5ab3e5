// Celery's positional-argument mapping for remote-control commands, and celery inspect's output layout (pure).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Chalk } from 'chalk';
import { destinationFlag, signalFlag } from '../../src/cli/inspect.js';
import { pretty, pyRepr, replyText } from '../../src/cli/control-output.js';
import { CONTROL_COMMANDS, compileArguments, type ControlCommand } from '../../src/control/commands.js';
import { answerRequest, isForNode } from '../../src/control/request.js';

const byName = (name: string): ControlCommand => CONTROL_COMMANDS.find((c) => c.name === name)!;
const plain = new Chalk({ level: 0 });

describe('compileArguments (celery control _compile_arguments)', () => {
  test('positionals fill the arguments in order, converted', () => {
    assert.deepEqual(compileArguments(byName('rate_limit'), ['tasks.add', '10/s']), { ok: true, arguments: { task_name: 'tasks.add', rate_limit: '10/s' } });
    assert.deepEqual(compileArguments(byName('pool_grow'), ['2']), { ok: true, arguments: { n: 2 } });
    assert.deepEqual(compileArguments(byName('pool_grow'), []), { ok: true, arguments: {} });
    assert.deepEqual(compileArguments(byName('time_limit'), ['t', '1.5']), { ok: true, arguments: { task_name: 't', soft: 1.5 } });
    assert.deepEqual(compileArguments(byName('conf'), ['yes']), { ok: true, arguments: { with_defaults: true } });
  });
  test('the rest goes to the variadic argument as a list', () => {
    assert.deepEqual(compileArguments(byName('revoke'), ['a', 'b']), { ok: true, arguments: { task_id: ['a', 'b'] } });
    assert.deepEqual(compileArguments(byName('terminate'), ['SIGKILL', 'a']), { ok: true, arguments: { signal: 'SIGKILL', task_id: ['a'] } });
    assert.deepEqual(compileArguments(byName('query_task'), []), { ok: true, arguments: { ids: [] } });
  });
  test('missing, extra and unparsable positionals are problems', () => {
    assert.equal(compileArguments(byName('rate_limit'), ['t']).ok, false);
    assert.equal(compileArguments(byName('cancel_consumer'), ['q', 'extra']).ok, false);
    assert.equal(compileArguments(byName('pool_shrink'), ['1.5']).ok, false);
    assert.equal(compileArguments(byName('conf'), ['maybe']).ok, false);
    assert.equal(compileArguments(byName('ping'), ['x']).ok, false);
  });
  test('every command has a unique name and a kind', () => {
    assert.equal(new Set(CONTROL_COMMANDS.map((c) => c.name)).size, CONTROL_COMMANDS.length);
  });
});

describe('celery inspect output', () => {
  test('ok/error answers, lists, objects and scalars', () => {
    assert.equal(replyText({ 'w@h': { ok: 'pong' } }, plain, true), '->  w@h: OK\n        pong\n');
    assert.equal(replyText({ 'w@h': { error: "KeyError('x')" } }, plain, true), "->  w@h: ERROR\n        KeyError('x')\n");
    assert.equal(replyText({ 'w@h': [] }, plain, true), '->  w@h: OK\n    - empty -\n');
    assert.equal(replyText({ 'w@h': ['a', { id: 'x', acknowledged: true, eta: null }] }, plain, true), "->  w@h: OK\n    * a\n    * {'id': 'x', 'acknowledged': True, 'eta': None}\n");
    assert.equal(replyText({ 'w@h': { b: 1, a: { d: 2, c: 3 } } }, plain, true), '->  w@h: OK\n    {\n        "a": {\n            "c": 3,\n            "d": 2\n        },\n        "b": 1\n    }\n');
    assert.equal(replyText({ 'w@h': { ok: 'pong' } }, plain, false), '->  w@h: OK\n');
    assert.equal(pretty(5).text, '5');
    assert.equal(pyRepr("it's"), '"it\'s"');
  });
});

describe('flags and requests', () => {
  test('-d and --signal', () => {
    assert.deepEqual(destinationFlag('a@h, b@h'), ['a@h', 'b@h']);
    assert.equal(destinationFlag(undefined), null);
    assert.throws(() => destinationFlag('a@h,'), { code: 'asynx.control.badDestination' });
    assert.equal(signalFlag('kill'), 'SIGKILL');
    assert.equal(signalFlag('SIGTERM'), 'SIGTERM');
    assert.equal(signalFlag('9'), 'SIGKILL');
    assert.throws(() => signalFlag('SIGNOPE'), { code: 'asynx.control.badSignal' });
  });
  test('pcre patterns, and a bad one matches nothing', () => {
    assert.equal(isForNode({ pattern: '^a\\d@', matcher: 'pcre' }, 'a1@h'), true);
    assert.equal(isForNode({ pattern: '(', matcher: 'pcre' }, 'a1@h'), false);
  });
  test('answers: built-in ping, a handler that overrides it, an unknown method', async () => {
    assert.deepEqual((await answerRequest({}, { method: 'ping' })).reply, { ok: 'pong' });
    assert.deepEqual((await answerRequest({ ping: () => ({ ok: 'pong!' }) }, { method: 'ping' })).reply, { ok: 'pong!' });
    assert.deepEqual((await answerRequest({}, { method: 'frob' })).reply, { error: "KeyError('frob')" });
    assert.deepEqual((await answerRequest({ toString: undefined as never }, { method: 'toString' })).reply, { error: "KeyError('toString')" });
  });
});
