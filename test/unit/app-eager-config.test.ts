// Pure app behaviour: config precedence and validation, eager mode, task options and backoff.

import assert from 'node:assert/strict';
import { describe, it, after } from 'node:test';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Asynx, MaxRetriesExceededError, RemoteTaskError, UsageError } from '../../src/index.js';
import { resolveConfig } from '../../src/config.js';
import { durationMs } from '../../src/util/duration.js';
import { backoffSeconds, resolveTaskOptions } from '../../src/app/task-options.js';
import { tempDir } from '../helpers/tmp.js';

describe('config', () => {
  const tmp = tempDir();
  after(() => tmp.cleanup());

  it('merges object < config file < env < overrides', async () => {
    writeFileSync(join(tmp.dir, 'asynx.config.json'), JSON.stringify({ defaultQueue: 'from-file', resultExpires: 10, prefetchMultiplier: 7 }));
    const saved = { ...process.env };
    process.env.ASYNX_RESULT_EXPIRES = '20';
    try {
      const app = new Asynx({ cwd: tmp.dir, defaultQueue: 'from-object', resultExpires: 5, acksLate: true });
      app.configure({ prefetchMultiplier: 9 });
      const c = await app.config();
      assert.equal(c.defaultQueue, 'from-file');
      assert.equal(c.resultExpiresMs, 20_000);
      assert.equal(c.prefetchMultiplier, 9);
      assert.equal(c.acksLate, true);
      assert.equal(c.brokerUrl, 'sqlite://./.asynx/asynx.db');
    } finally {
      process.env = saved;
    }
  });

  it('loads an .mjs config file and resolves durations', async () => {
    const dir = join(tmp.dir, 'mjs');
    (await import('node:fs')).mkdirSync(dir);
    writeFileSync(join(dir, 'asynx.config.mjs'), "export default { publishTimeout: '2s', visibilityTimeout: '1m' };\n");
    const c = await new Asynx({ cwd: dir }).config();
    assert.equal(c.publishTimeoutMs, 2000);
    assert.equal(c.visibilityTimeoutMs, 60_000);
  });

  it('rejects bad values with a usage error naming the option', () => {
    assert.throws(() => resolveConfig({ brokerUrl: 'kafka://x' }), (e: unknown) => e instanceof UsageError && /kafka:\/\/x/.test(e.message) && e.exitCode === 64);
    assert.throws(() => resolveConfig({ prefetchMultiplier: 0 }), /prefetchMultiplier/);
    assert.throws(() => durationMs('soon', 'publishTimeout'), /publishTimeout/);
    assert.equal(durationMs('250ms', 'x'), 250);
    assert.equal(durationMs(3, 'x'), 3000);
    assert.throws(() => resolveConfig({ publishTimeout: 'soon' }), /publishTimeout/);
    assert.equal(resolveConfig({ brokerUrl: 'amqp://h' }).resultBackend, 'rpc://');
  });

  it('a missing explicit config file is a clear error', async () => {
    await assert.rejects(new Asynx({ cwd: tmp.dir, configFile: 'nope.json' }).config(), /nope\.json does not exist/);
  });
});

describe('eager mode', () => {
  const app = new Asynx({ eager: true, configFile: false });
  const add = app.task('e.add', (a: number, b: number) => a + b);
  const fails = app.task('e.fail', () => {
    throw new RangeError('bad range');
  });
  let attempts = 0;
  const flaky = app.task('e.flaky', function () {
    attempts++;
    if (this.retries < 2) this.retry({ countdown: 100 });
    return this.retries;
  });
  const never = app.task('e.never', function () {
    this.retry();
  }, { maxRetries: 1 });
  const progress = app.task('e.progress', async function () {
    await this.updateState('PROGRESS', { n: 1 });
    return 'done';
  });

  it('runs in-process with typed args and results', async () => {
    const r = await add.delay(2, 3);
    const v: number = await r.get();
    assert.equal(v, 5);
    assert.equal(await r.state(), 'SUCCESS');
  });

  it('propagates errors with their type', async () => {
    const err = await (await fails.delay()).get().catch((e: unknown) => e);
    assert.ok(err instanceof RemoteTaskError);
    assert.equal(err.name, 'RangeError');
    assert.equal(err.message, 'bad range');
  });

  it('retries without waiting, and fails with MaxRetriesExceededError when retries run out', async () => {
    assert.equal(await (await flaky.delay()).get(), 2);
    assert.equal(attempts, 3);
    const err = await (await never.delay()).get().catch((e: unknown) => e);
    assert.ok(err instanceof RemoteTaskError);
    assert.equal(err.name, new MaxRetriesExceededError('x', 'y', 1).name);
  });

  it('custom states are stored', async () => {
    assert.equal(await (await progress.delay()).get(), 'done');
  });

  it('unknown task names and bad arguments are clear errors', async () => {
    await assert.rejects(app.sendTask('nope'), /not registered/);
    await assert.rejects(app.sendTask('e.add', 'x' as unknown as unknown[]), /args must be an array/);
    assert.throws(() => app.task('e.add', () => 1), /registered twice/);
  });
});

describe('task options', () => {
  it('validates and fills defaults', () => {
    const o = resolveTaskOptions('t', {});
    assert.equal(o.maxRetries, 3);
    assert.equal(o.defaultRetryDelay, 180);
    assert.throws(() => resolveTaskOptions('t', { timeLimit: -1 }), /timeLimit/);
    assert.throws(() => resolveTaskOptions('t', { priority: 300 }), /priority/);
  });

  it('exponential backoff with a cap and full jitter', () => {
    const o = resolveTaskOptions('t', { retryBackoff: 2, retryBackoffMax: 10, retryJitter: false });
    assert.deepEqual([0, 1, 2, 3].map((r) => backoffSeconds(o, r)), [2, 4, 8, 10]);
    const j = resolveTaskOptions('t', { retryBackoff: true });
    assert.equal(backoffSeconds(j, 3, () => 0.5), 4);
    assert.equal(backoffSeconds(resolveTaskOptions('t', { defaultRetryDelay: 7 }), 5), 7);
  });
});
