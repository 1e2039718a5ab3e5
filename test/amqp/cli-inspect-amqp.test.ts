// asynx inspect / control / status / revoke on a private RabbitMQ: asynx workers and a Python Celery worker answer.

import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { openControlClient } from '../../src/control/client.js';
import { celerySkip, startCeleryWorker, type CeleryWorker } from '../helpers/celery.js';
import { rabbitSkip, startRabbit, type RabbitNode } from '../helpers/rabbitmq.js';
import { tempDir, waitFor } from '../helpers/tmp.js';
import { runCli, startWorker, type RunningWorker } from '../helpers/worker.js';

const APP = fileURLToPath(new URL('../fixtures/interop-app.mjs', import.meta.url));
const skip = rabbitSkip() || celerySkip();
const PY = 'py1@localhost';

describe('asynx remote control on RabbitMQ (asynx and Celery nodes)', { skip }, () => {
  let rabbit: RabbitNode;
  const tmp = tempDir('asynx-inspect-amqp-');
  const workers: RunningWorker[] = [];
  let celery: CeleryWorker | null = null;
  let env: Record<string, string> = {};
  const cli = (args: string[]) => runCli(args, env, 60_000, tmp.dir);
  before(async () => {
    rabbit = await startRabbit();
    env = { ASYNX_BROKER_URL: rabbit.url, ASYNX_RESULT_BACKEND: 'rpc://' };
    workers.push(await startWorker({ brokerUrl: rabbit.url, app: APP, env, cwd: tmp.dir, args: ['-n', 'a1@localhost', '-c', '1'] }));
    celery = await startCeleryWorker({ brokerUrl: rabbit.url, nodeName: PY, concurrency: 1 });
  });
  after(async () => {
    for (const w of workers) await w.stop('SIGKILL', 10_000).catch(() => undefined);
    await celery?.stop();
    await rabbit?.dispose();
    tmp.cleanup();
  });

  test('status: the asynx node and the Celery node are online', { timeout: 90_000 }, async () => {
    const r = await cli(['status', '--timeout', '3']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.split('\n').filter((l) => l.startsWith('->')).sort(), ['->  a1@localhost: OK', `->  ${PY}: OK`]);
    assert.match(r.stdout, /\n\n2 nodes online\.\n$/);
  });

  test('inspect ping | stats answered by the Python Celery worker', { timeout: 90_000 }, async () => {
    const ping = await cli(['inspect', 'ping', '-d', PY]);
    assert.equal(ping.code, 0, ping.stderr);
    assert.equal(ping.stdout, `->  ${PY}: OK\n        pong\n\n1 node online.\n`);
    const stats = await cli(['inspect', 'stats', '-d', PY, '--json']);
    assert.equal(stats.code, 0, stats.stderr);
    const s = (JSON.parse(stats.stdout) as Record<string, { pid: number; pool: { 'max-concurrency': number }; broker: { transport: string }; rusage: unknown }>)[PY]!;
    assert.equal(s.pool['max-concurrency'], 1);
    assert.equal(s.broker.transport, 'amqp');
    assert.ok(s.pid > 0 && s.rusage, stats.stdout);
    const text = await cli(['inspect', 'stats', '-d', PY]);
    assert.match(text.stdout, new RegExp(`^->  ${PY}: OK\\n    \\{\\n {8}"broker": \\{`));
    const registered = await cli(['inspect', 'registered', '-d', PY]);
    assert.match(registered.stdout, /^ {4}\* add$/m);
  });

  test('inspect and control an asynx node; revoke reaches both nodes', { timeout: 90_000 }, async () => {
    const stats = await cli(['inspect', 'stats', '-d', 'a1@localhost', '--json']);
    assert.equal(stats.code, 0, stats.stderr);
    assert.equal((JSON.parse(stats.stdout) as Record<string, { pid: number }>)['a1@localhost']!.pid, workers[0]!.pid);
    const revoke = await cli(['revoke', '7c2d2b1e-0000-4000-8000-000000000001', '--timeout', '3', '--json']);
    assert.equal(revoke.code, 0, revoke.stderr);
    const replies = JSON.parse(revoke.stdout) as Array<Record<string, { ok: string }>>;
    assert.deepEqual(replies.map((r) => Object.keys(r)[0]).sort(), ['a1@localhost', PY]);
    for (const r of replies) assert.match(Object.values(r)[0]!.ok, /7c2d2b1e-0000-4000-8000-000000000001/);
    const revoked = await cli(['inspect', 'revoked', '-d', PY, '--json']);
    assert.deepEqual(JSON.parse(revoked.stdout), { [PY]: ['7c2d2b1e-0000-4000-8000-000000000001'] });
  });

  test('control: rate_limit maps its positionals for both nodes; shutdown -d stops the asynx node only', { timeout: 90_000 }, async () => {
    const rl = await cli(['control', 'rate_limit', 'add', '10/s', '--timeout', '3', '--json']);
    assert.equal(rl.code, 0, rl.stderr);
    const replies = JSON.parse(rl.stdout) as Array<Record<string, Record<string, string>>>;
    assert.deepEqual(replies.map((r) => Object.keys(r)[0]).sort(), ['a1@localhost', PY]);
    // Celery applied {task_name: 'add', rate_limit: '10/s'} (a wrong mapping would be a TypeError reply).
    assert.deepEqual(replies.find((r) => PY in r)![PY], { ok: 'new rate limit set successfully' });
    const down = await cli(['control', 'shutdown', '-d', 'a1@localhost']);
    assert.equal(down.code, 0, down.stderr);
    assert.equal(down.stdout, '->  a1@localhost: OK\n        shutting down\n');
    let exit: number | string | undefined;
    void workers[0]!.exited.then((c) => (exit = c));
    await waitFor('a1 stopped by remote control', () => exit !== undefined, 30_000);
    assert.equal(exit, 0, workers[0]!.output());
    const status = await cli(['status', '--json', '--timeout', '2']);
    assert.deepEqual(JSON.parse(status.stdout), { [PY]: { ok: 'pong' } });
  });

  test('no node replied: exit 1; the CLI leaves no reply queue behind', { timeout: 90_000 }, async () => {
    const r = await cli(['inspect', 'ping', '-d', 'nobody@localhost', '--timeout', '0.5']);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /No nodes replied within time constraint/);
    await waitFor('reply queues gone', async () => !/\.reply\.celery\.pidbox/.test(await rabbit.ctl(['list_queues', 'name', '--no-table-headers', '-q'])), 20_000, 250);
  });

  test('the client API: broadcast with a limit returns early; a cast (reply: false) resolves []', { timeout: 90_000 }, async () => {
    const client = await openControlClient(rabbit.url);
    try {
      const first = await client.broadcast('ping', {}, { timeoutMs: 30_000, limit: 1 });
      assert.equal(first.length, 1);
      assert.deepEqual(await client.broadcast('ping', {}, { reply: false }), []);
      assert.deepEqual(Object.keys(await client.inspect('ping', {}, { timeoutMs: 2_000 })), [PY], 'the asynx node was shut down above');
    } finally {
      await client.close();
    }
  });
});
