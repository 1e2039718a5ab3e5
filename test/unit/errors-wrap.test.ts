// errorMessage() and toAsynxError(): foreign errors become AsynxErrors with their cause, and messages never stack `Error: `.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AsynxError, errorMessage, ExitCode, toAsynxError, UsageError } from '../../src/errors.js';

describe('errorMessage / toAsynxError', () => {
  it('errorMessage drops the `Error: ` prefixes a stack or String(err) adds', () => {
    assert.equal(errorMessage(new Error('boom')), 'boom');
    assert.equal(errorMessage(new Error('Error: Error: boom')), 'boom');
    assert.equal(errorMessage('TypeError: kaput'), 'kaput');
    assert.equal(errorMessage({ code: 'ECONNREFUSED' }), '{"code":"ECONNREFUSED"}');
    assert.equal(errorMessage(undefined), 'undefined');
  });

  it('toAsynxError wraps a driver error with a code, the cause and facts, and keeps an AsynxError as it is', () => {
    const raw = Object.assign(new Error('SQLITE_CANTOPEN: unable to open database file'), { code: 'SQLITE_CANTOPEN' });
    const wrapped = toAsynxError(raw, 'asynx.sqlite.cantOpen', 'Cannot open the SQLite database /x/y.db', { exitCode: ExitCode.unavailable, facts: { path: '/x/y.db' } });
    assert.ok(wrapped instanceof AsynxError);
    assert.equal(wrapped.code, 'asynx.sqlite.cantOpen');
    assert.equal(wrapped.exitCode, ExitCode.unavailable);
    assert.equal(wrapped.message, 'Cannot open the SQLite database /x/y.db: SQLITE_CANTOPEN: unable to open database file');
    assert.equal(wrapped.cause, raw);
    assert.deepEqual(wrapped.facts, { path: '/x/y.db' });
    assert.equal(toAsynxError(new Error('x'), 'asynx.test.plain', 'Plain').exitCode, ExitCode.failure);
    const mine = new UsageError('asynx.test.mine', 'already ours');
    assert.equal(toAsynxError(mine, 'asynx.test.other', 'ignored'), mine);
  });

  it('UsageError carries a cause when given one', () => {
    const cause = new SyntaxError('Unexpected token');
    const e = new UsageError('asynx.test.badFile', 'Cannot read the file', { path: '/p' }, cause);
    assert.equal(e.exitCode, ExitCode.usage);
    assert.equal(e.cause, cause);
  });
});
