// Remote control: `celery inspect` (real Python Celery) answered by an asynx pidbox on a private RabbitMQ.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { isForNode, startPidbox, type Pidbox } from '../../src/control/pidbox.js';
import { celerySkip, runPython } from '../helpers/celery.js';
import { rabbitSkip, startRabbit, type RabbitNode } from '../helpers/rabbitmq.js';
import { waitFor } from '../helpers/tmp.js';

const fixtures = JSON.parse(readFileSync(new URL('../fixtures/celery-v2.json', import.meta.url), 'utf8')) as { worker_publishes: Array<{ name: string; body: unknown }> };

describe('pidbox request routing (pure)', () => {
  test('the captured ping request is for every node', () => {
    const req = fixtures.worker_publishes.find((v) => v.name === 'pidbox_ping_request')!.body as Record<string, unknown>;
    assert.equal(isForNode(req, 'a@h'), true);
  });
  test('destination and glob patterns select nodes', () => {
    assert.equal(isForNode({ destination: ['a@h'] }, 'a@h'), true);
    assert.equal(isForNode({ destination: ['b@h'] }, 'a@h'), false);
    assert.equal(isForNode({ pattern: 'a*', matcher: 'glob' }, 'a1@h'), true);
    assert.equal(isForNode({ pattern: 'b*', matcher: 'glob' }, 'a1@h'), false);
  });
});

const skip = rabbitSkip() || celerySkip();

describe('celery inspect answered by an asynx node', { skip }, () => {
  let node: RabbitNode;
  let box: Pidbox | null = null;
  before(async () => {
    node = await startRabbit();
    box = await startPidbox(node.url, 'asynx1@localhost', {
      registered: () => ['add', 'boom'],
      stats: () => ({ pid: process.pid, pool: { 'max-concurrency': 2 } }),
      active: () => [],
    });
  });
  after(async () => {
    await box?.close();
    await node?.dispose();
  });

  const inspect = async (args: string[]) => {
    const r = await runPython(['-m', 'celery', '-A', 'capp', 'inspect', ...args, '-t', '3', '-j'], { brokerUrl: node.url, timeoutMs: 60_000 });
    return r;
  };

  test('inspect ping -d asynx1@localhost: pong', { timeout: 90_000 }, async () => {
    const r = await inspect(['ping', '-d', 'asynx1@localhost']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout.trim().split('\n').pop()!), { 'asynx1@localhost': { ok: 'pong' } });
  });

  test('inspect ping to every node (broadcast) includes the asynx node', { timeout: 90_000 }, async () => {
    const r = await inspect(['ping']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout.trim().split('\n').pop()!), { 'asynx1@localhost': { ok: 'pong' } });
  });

  test('inspect registered and stats use the handlers', { timeout: 90_000 }, async () => {
    const reg = await inspect(['registered', '-d', 'asynx1@localhost']);
    assert.equal(reg.code, 0, reg.stderr);
    assert.deepEqual(JSON.parse(reg.stdout.trim().split('\n').pop()!), { 'asynx1@localhost': ['add', 'boom'] });
    const stats = await inspect(['stats', '-d', 'asynx1@localhost']);
    assert.equal((JSON.parse(stats.stdout.trim().split('\n').pop()!) as Record<string, { pid: number }>)['asynx1@localhost'].pid, process.pid);
  });

  test('a request for another node gets no answer from this one', { timeout: 90_000 }, async () => {
    const r = await inspect(['ping', '-d', 'other@localhost']);
    assert.notEqual(r.code, 0);
    assert.match(r.stdout + r.stderr, /No nodes replied/);
  });

  test('close is idempotent (one promise) and takes the mailbox connection and queue away', { timeout: 60_000 }, async () => {
    const second = await startPidbox(node.url, 'asynx2@localhost', {});
    const connections = () => node.ctl(['list_connections', 'client_properties', '--no-table-headers', '-q']);
    const queues = () => node.ctl(['list_queues', 'name', '--no-table-headers', '-q']);
    await waitFor('the second mailbox queue', async () => (await queues()).includes('asynx2@localhost.celery.pidbox'), 10_000, 200);
    const first = second.close();
    assert.equal(second.close(), first, 'close() returns the same promise');
    await first;
    assert.equal(second.close(), first, 'and still the same one after it settled');
    await waitFor('the mailbox connection to go', async () => !(await connections()).includes('asynx pidbox asynx2@localhost'), 10_000, 200);
    await waitFor('the auto-delete mailbox queue to go', async () => !(await queues()).includes('asynx2@localhost.celery.pidbox'), 10_000, 200);
    // The first node's mailbox is untouched.
    const r = await inspect(['ping', '-d', 'asynx1@localhost']);
    assert.equal(r.code, 0, r.stderr);
  });
});
