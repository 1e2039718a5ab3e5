// Issue 9: a worker whose AMQP broker is down at start-up retries with backoff (logged), honours TERM meanwhile,
// exits 69 once --broker-retries run out, and comes up when the broker does. SQLite is never retried.

import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Asynx } from '../../src/index.js';
import { BrokerUnavailableError, UsageError } from '../../src/errors.js';
import { connectWithRetry, type StartupRetry } from '../../src/worker/connect-retry.js';
import { freePort, rabbitSkip, startRabbit, type RabbitNode } from '../helpers/rabbitmq.js';
import { tempDir, waitFor } from '../helpers/tmp.js';
import { exitWithin, spawnWorker, type SpawnedWorker } from '../helpers/worker-events.js';

const RETRY_LINE = /Cannot connect to the broker amqp:\/\/guest:\*\*\*\*@127\.0\.0\.1:\d+\/\/: connect ECONNREFUSED 127\.0\.0\.1:\d+\. Trying again in (\d+\.\d\d) seconds\.\.\. \((\d+)\/(\d+)\)/g;

describe('connectWithRetry', () => {
  const down = () => Promise.reject(new BrokerUnavailableError('not reachable', { cause: new Error('connect ECONNREFUSED 127.0.0.1:1') }));
  const base = (over: Partial<StartupRetry> = {}): StartupRetry => ({ retries: 100, maxWaitMs: null, url: 'amqp://x', canRetry: () => true, onRetry: () => undefined, signal: new AbortController().signal, delay: () => 20, ...over });

  it('maxWaitMs ends the retries before the count does (exit 69 code and the last reason)', async () => {
    const seen: number[] = [];
    const t0 = Date.now();
    await assert.rejects(connectWithRetry(down, base({ maxWaitMs: 200, onRetry: (_m, f) => seen.push(f.retry) })), (err: Error & { code?: string; exitCode?: number }) =>
      err.code === 'asynx.worker.brokerRetriesExhausted' && err.exitCode === 69 && /ECONNREFUSED/.test(err.message));
    assert.ok(seen.length >= 2 && seen.length < 100, `retries: ${seen.length}`);
    assert.ok(Date.now() - t0 < 2_000);
  });

  it('a failure not worth retrying is rethrown at once; a success after retries resolves', async () => {
    const bad = new UsageError('asynx.config.badBroker', 'bad URL');
    let calls = 0;
    await assert.rejects(connectWithRetry(() => (calls++, Promise.reject(bad)), base({ canRetry: (e) => e !== bad })), (e) => e === bad);
    assert.equal(calls, 1);
    let n = 0;
    assert.equal(await connectWithRetry(() => (++n < 3 ? down() : Promise.resolve('up')), base()), 'up');
    assert.equal(n, 3);
  });

  it('an abort ends a wait or an attempt in flight with null', async () => {
    const ac = new AbortController();
    const p = connectWithRetry(() => new Promise<never>(() => undefined), base({ signal: ac.signal }));
    setTimeout(() => ac.abort(), 20);
    assert.equal(await p, null);
    const ac2 = new AbortController();
    const q = connectWithRetry(down, base({ signal: ac2.signal, delay: () => 60_000, onRetry: () => ac2.abort() }));
    assert.equal(await q, null);
  });
});

describe('worker start-up with the broker down', () => {
  const spawned: SpawnedWorker[] = [];
  const tmp = tempDir();
  afterEach(() => {
    for (const w of spawned.splice(0)) w.kill();
  });
  after(() => tmp.cleanup());

  function worker(url: string, args: string[], env: NodeJS.ProcessEnv = {}): SpawnedWorker {
    const w = spawnWorker(['-c', '1', '--no-color', ...args], { ASYNX_BROKER_URL: url, ASYNX_CONNECT_TIMEOUT: '0.3s', ...env });
    spawned.push(w);
    return w;
  }

  it('--broker-retries 2 on a refused port: two logged retries (2 s, 4 s), then exit 69 saying what to do', { timeout: 60_000 }, async () => {
    const port = await freePort();
    const w = worker(`amqp://guest:guest@127.0.0.1:${port}//`, ['--broker-retries', '2']);
    const t0 = Date.now();
    assert.equal(await exitWithin(w, 30_000), 69, w.output());
    const retries = [...w.output().matchAll(RETRY_LINE)].map((m) => [m[1], m[2], m[3]]);
    assert.deepEqual(retries, [['2.00', '1', '2'], ['4.00', '2', '2']], w.output());
    assert.match(w.output(), /WARNING/);
    assert.match(w.output(), /asynx: Cannot connect to the broker amqp:\/\/guest:\*\*\*\*@127\.0\.0\.1:\d+\/\/ \(3 attempts over [\d.]+ s\): connect ECONNREFUSED .*raise --broker-retries \(now 2\)/);
    assert.doesNotMatch(w.output(), /guest:guest/, 'the password never reaches the log');
    assert.ok(Date.now() - t0 >= 6_000, 'it waited for the retries');
  });

  it('--broker-retries 0: exit 69 after one attempt, no retry', { timeout: 30_000 }, async () => {
    const port = await freePort();
    const w = worker(`amqp://guest:guest@127.0.0.1:${port}//`, ['--broker-retries', '0']);
    assert.equal(await exitWithin(w, 15_000), 69, w.output());
    assert.doesNotMatch(w.output(), /Trying again/);
  });

  it('TERM during the retries: a clean stop, exit 0, promptly', { timeout: 30_000 }, async () => {
    const port = await freePort();
    const pidfile = join(tmp.dir, 'term.pid');
    const w = worker(`amqp://guest:guest@127.0.0.1:${port}//`, ['--pidfile', pidfile]);
    await waitFor('the first retry warning', () => /Trying again in 2\.00 seconds\.\.\. \(1\/100\)/.test(w.output()), 15_000);
    const t0 = Date.now();
    w.proc.kill('SIGTERM');
    assert.equal(await exitWithin(w, 10_000), 0, w.output());
    assert.ok(Date.now() - t0 < 1_500, `stopped in ${Date.now() - t0} ms`);
  });

  it('--broker-retries must be a whole number ≥ 0 (exit 64)', { timeout: 30_000 }, async () => {
    const w = worker('amqp://guest:guest@127.0.0.1:1//', ['--broker-retries', '-1']);
    assert.equal(await exitWithin(w, 15_000), 64, w.output());
    assert.match(w.output(), /--broker-retries/);
  });

  it('SQLite: a database that cannot be opened is not "down": no retry, the start fails at once', { timeout: 30_000 }, async () => {
    const notADir = join(tmp.dir, 'plain-file');
    writeFileSync(notADir, 'x');
    const w = worker(`sqlite://${join(notADir, 'broker.db')}`, []);
    const t0 = Date.now();
    const code = await exitWithin(w, 15_000);
    assert.notEqual(code, 0, w.output());
    assert.doesNotMatch(w.output(), /Trying again/);
    assert.ok(Date.now() - t0 < 10_000);
  });
});

describe('worker start-up while RabbitMQ is down, then up', { skip: rabbitSkip() }, () => {
  let node: RabbitNode | null = null;
  const spawned: SpawnedWorker[] = [];
  let client: Asynx | null = null;
  before(async () => {
    node = await startRabbit();
  });
  after(async () => {
    for (const w of spawned.splice(0)) w.kill();
    await client?.close();
    await node?.dispose();
  });

  it('the worker retries until the broker starts, then comes up and runs a task', { timeout: 120_000 }, async () => {
    await node!.stop();
    const w = spawnWorker(['-c', '1', '--no-color'], { ASYNX_BROKER_URL: node!.url });
    spawned.push(w);
    await waitFor('a retry warning', () => /Trying again in \d+\.\d\d seconds\.\.\. \(1\/100\)/.test(w.output()), 30_000, 50);
    await node!.start();
    await waitFor('the worker to be ready', () => / ready\.$/m.test(w.output()), 60_000, 100);
    client = new Asynx({ brokerUrl: node!.url, configFile: false });
    const r = await client.sendTask('t.add', [20, 22]);
    assert.equal(await r.get({ timeout: 30 }), 42);
    w.proc.kill('SIGTERM');
    assert.equal(await exitWithin(w, 20_000), 0, w.output());
  });

  it('a wrong password is not "down": exit 69 at once, no retry', { timeout: 60_000 }, async () => {
    const w = spawnWorker(['-c', '1', '--no-color'], { ASYNX_BROKER_URL: node!.url.replace('guest:guest@', 'guest:wrong@'), ASYNX_CONNECT_TIMEOUT: '2s' });
    spawned.push(w);
    assert.equal(await exitWithin(w, 30_000), 69, w.output());
    assert.doesNotMatch(w.output(), /Trying again/);
    assert.match(w.output(), /ACCESS[_-]REFUSED|403/);
  });
});
