// One duration rule everywhere (issue 8 defect 3): a bare number is seconds, units accepted, bad values named.

import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Asynx, AsynxError, TimeoutError, UsageError, currentTask } from '../../src/index.js';
import { optionsFromEnv, optionsFromPairs, resolveConfig } from '../../src/config.js';
import { resolveTaskOptions } from '../../src/app/task-options.js';
import { tempDir } from '../helpers/tmp.js';

/** Asserts a UsageError whose message (or, for URLs, facts.option) names `option`. */
function namesOption(option: string) {
  return (e: unknown) => {
    assert.ok(e instanceof UsageError, `expected a UsageError, got ${String(e)}`);
    assert.equal(e.exitCode, 64);
    if (e.facts.option !== option) assert.match(e.message, new RegExp(`\\b${option}\\b`));
    return true;
  };
}

describe('durations in app config', () => {
  it('defaults are unchanged in effect: 1 day, 5 s, 5 s, 30 s', () => {
    const c = resolveConfig({});
    assert.equal(c.resultExpiresMs, 86_400_000);
    assert.equal(c.publishTimeoutMs, 5_000);
    assert.equal(c.connectTimeoutMs, 5_000);
    assert.equal(c.visibilityTimeoutMs, 30_000);
  });

  it('ASYNX_PUBLISH_TIMEOUT=5 is 5 seconds, like ASYNX_RESULT_EXPIRES=5 (was 5 ms)', () => {
    const c = resolveConfig(optionsFromEnv({ ASYNX_PUBLISH_TIMEOUT: '5', ASYNX_RESULT_EXPIRES: '5', ASYNX_CONNECT_TIMEOUT: '250ms', ASYNX_VISIBILITY_TIMEOUT: '2m' }));
    assert.equal(c.publishTimeoutMs, 5_000);
    assert.equal(c.resultExpiresMs, 5_000);
    assert.equal(c.connectTimeoutMs, 250);
    assert.equal(c.visibilityTimeoutMs, 120_000);
  });

  it("the string '30' is 30 seconds in app options (was 30 ms); numbers are seconds; units work", () => {
    assert.equal(resolveConfig({ publishTimeout: '30' }).publishTimeoutMs, 30_000);
    assert.equal(resolveConfig({ publishTimeout: 30 }).publishTimeoutMs, 30_000);
    assert.equal(resolveConfig({ publishTimeout: '250ms' }).publishTimeoutMs, 250);
    assert.equal(resolveConfig({ resultExpires: '1h' }).resultExpiresMs, 3_600_000);
    assert.equal(resolveConfig({ visibilityTimeout: 0.5 }).visibilityTimeoutMs, 500);
  });

  it('worker overrides after -- follow the same rule', () => {
    assert.equal(resolveConfig(optionsFromPairs(['publish_timeout=7', 'connectTimeout=1500ms'])).publishTimeoutMs, 7_000);
    assert.equal(resolveConfig(optionsFromPairs(['connectTimeout=1500ms'])).connectTimeoutMs, 1_500);
  });

  it("a malformed duration is a UsageError naming the option or variable", () => {
    assert.throws(() => resolveConfig({ publishTimeout: 'abc' }), namesOption('publishTimeout'));
    assert.throws(() => resolveConfig({ resultExpires: 'soon' as unknown as number }), namesOption('resultExpires'));
    assert.throws(() => resolveConfig({ visibilityTimeout: -1 }), namesOption('visibilityTimeout'));
    assert.throws(() => optionsFromEnv({ ASYNX_CONNECT_TIMEOUT: 'abc' }), namesOption('ASYNX_CONNECT_TIMEOUT'));
    assert.throws(() => optionsFromEnv({ ASYNX_RESULT_EXPIRES: '1 week' }), namesOption('ASYNX_RESULT_EXPIRES'));
    assert.throws(() => optionsFromPairs(['publishTimeout=abc']), namesOption('publishTimeout'));
  });

  it('env booleans and numbers are read by the one settings table', () => {
    const o = optionsFromEnv({ ASYNX_ACKS_LATE: 'yes', ASYNX_EAGER: 'off', ASYNX_PREFETCH_MULTIPLIER: '2' });
    assert.deepEqual(o, { acksLate: true, eager: false, prefetchMultiplier: 2 });
    assert.throws(() => optionsFromEnv({ ASYNX_ACKS_LATE: 'maybe' }), namesOption('ASYNX_ACKS_LATE'));
  });

  it('broker and backend URLs are validated by the typed URL parsers', () => {
    assert.throws(() => resolveConfig({ brokerUrl: 'sqlite://' }), (e: unknown) => e instanceof UsageError && e.code === 'asynx.config.badBroker' && e.facts.option === 'brokerUrl');
    assert.throws(() => resolveConfig({ brokerUrl: 'kafka://x' }), namesOption('kafka'));
    assert.throws(() => resolveConfig({ resultBackend: 'mongodb://x' }), namesOption('resultBackend'));
    assert.equal(resolveConfig({ brokerUrl: 'redis://h:6390/2?visibility_timeout=30' }).resultBackend, 'redis://h:6390/2', 'the broker\'s Redis, less the transport\'s option');
    assert.equal(resolveConfig({ brokerUrl: 'redis://h/2?delayed_delivery=false&visibility_timeout=30' }).resultBackend, 'redis://h/2', 'less both transport options');
    assert.equal(resolveConfig({ brokerUrl: 'amqps://h/v' }).resultBackend, 'rpc://');
  });
});

describe('durations in task options', () => {
  it('bare numbers are seconds; strings carry units', () => {
    const o = resolveTaskOptions('t', { defaultRetryDelay: '2m', retryBackoff: '500ms', retryBackoffMax: 10, timeLimit: '1m', softTimeLimit: 30 });
    assert.equal(o.defaultRetryDelay, 120);
    assert.equal(o.retryBackoff, 0.5);
    assert.equal(o.retryBackoffMax, 10);
    assert.equal(o.timeLimit, 60);
    assert.equal(o.softTimeLimit, 30);
  });

  it("a malformed task option is a UsageError naming it (asynx.task.badOption)", () => {
    for (const option of ['timeLimit', 'softTimeLimit', 'defaultRetryDelay', 'retryBackoff', 'retryBackoffMax'] as const) {
      assert.throws(() => resolveTaskOptions('t', { [option]: 'abc' }), (e: unknown) => namesOption(option)(e) && (e as UsageError).code === 'asynx.task.badOption');
    }
    assert.throws(() => resolveTaskOptions('t', { maxRetries: -2 }), namesOption('maxRetries'));
    assert.throws(() => resolveTaskOptions('t', { maxRetries: 1.5 }), namesOption('maxRetries'));
    assert.equal(resolveTaskOptions('t', { maxRetries: null }).maxRetries, null);
  });
});

describe('durations in retries and AsyncResult.get()', () => {
  const tmp = tempDir();
  after(() => tmp.cleanup());

  it('get({ timeout: 0.2 }) waits about 200 ms (seconds, was 0.2 ms), then rejects with TimeoutError', async () => {
    const app = new Asynx({ brokerUrl: `sqlite://${join(tmp.dir, 'g.db')}`, configFile: false });
    try {
      const r = await app.sendTask('nobody.runs.this');
      const t0 = Date.now();
      const err = await r.get({ timeout: 0.2 }).catch((e: unknown) => e);
      const waited = Date.now() - t0;
      assert.ok(err instanceof TimeoutError, `expected TimeoutError, got ${String(err)}`);
      assert.ok(waited >= 180, `rejected after ${waited} ms`);
      assert.ok(waited < 5_000, `rejected after ${waited} ms`);
      const t1 = Date.now();
      await assert.rejects(r.get({ timeout: '150ms' }), TimeoutError);
      assert.ok(Date.now() - t1 >= 130);
      await assert.rejects(r.get({ timeout: 'abc' }), (e: unknown) => namesOption('timeout')(e) && (e as UsageError).code === 'asynx.result.badOption');
    } finally {
      await app.close();
    }
  });

  it("ctx.retry({ countdown: '1s' }) is accepted; a malformed one fails the task naming countdown", async () => {
    const app = new Asynx({ eager: true, configFile: false });
    const ok = app.task('d.retry', function () {
      if (this.retries < 1) this.retry({ countdown: '1s' });
      return this.retries;
    });
    const bad = app.task('d.badRetry', function () {
      this.retry({ countdown: 'abc' });
    });
    const badMax = app.task('d.badMax', function () {
      this.retry({ maxRetries: -2 });
    });
    assert.equal(await (await ok.delay()).get(), 1);
    await assert.rejects((await bad.delay()).get(), (e: unknown) => (e as Error).name === 'UsageError' && /countdown/.test((e as Error).message));
    await assert.rejects((await badMax.delay()).get(), (e: unknown) => (e as Error).name === 'UsageError' && /maxRetries/.test((e as Error).message));
  });

  it('currentTask() outside a task is an AsynxError with a code (was a plain Error)', () => {
    assert.throws(() => currentTask(), (e: unknown) => e instanceof AsynxError && e.code === 'asynx.task.noContext');
  });

  it("countdown: '2s' on a call is accepted (was RangeError: Invalid time value) and sets eta 2 s ahead", async () => {
    const path = join(tmp.dir, 'c.db');
    const app = new Asynx({ brokerUrl: `sqlite://${path}`, configFile: false });
    try {
      const t0 = Date.now();
      const r = await app.sendTask('some.task', [], {}, { countdown: '2s', expires: '1m', timeLimit: '90s' });
      const db = new Database(path, { readonly: true });
      try {
        const row = db.prepare('SELECT visible_at, headers FROM messages').get() as { visible_at: number; headers: string };
        const h = JSON.parse(row.headers) as { id: string; eta: string; expires: string; timelimit: unknown[] };
        assert.equal(h.id, r.id);
        const eta = Date.parse(h.eta);
        assert.ok(eta - t0 >= 1_900 && eta - t0 < 3_000, `eta ${eta - t0} ms ahead`);
        assert.ok(Date.parse(h.expires) - t0 >= 59_000, 'expires one minute ahead');
        assert.deepEqual(h.timelimit, [90, null], 'time limits stay seconds on the wire');
        assert.ok(row.visible_at - t0 >= 1_900, 'held in the broker until due');
      } finally {
        db.close();
      }
    } finally {
      await app.close();
    }
  });
});
