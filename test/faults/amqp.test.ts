// The fault matrix on RabbitMQ (one private node for the file): kill -9 of a pool child and of a whole node,
// SIGTERM + start loop, and the broker stopped for 10 s and started again, each under load.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Asynx } from '../../src/index.js';
import { rabbitSkip, startRabbit, type RabbitNode } from '../helpers/rabbitmq.js';
import { childKillRow } from './child-kill.js';
import { Ledger, Nodes, Progress, publishLedger, recordRow, scaled, scratch, waitFor, type NodeSpec } from './harness.js';

const skip = rabbitSkip();

describe('fault matrix on RabbitMQ', { skip }, () => {
  const tmp = scratch('amqp');
  const nodes = new Nodes();
  const clients: Asynx[] = [];
  let rabbit: RabbitNode;
  before(async () => {
    rabbit = await startRabbit();
  });
  after(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    await nodes.stopAll();
    await rabbit?.dispose();
    tmp.cleanup();
  });

  function setup(name: string, env: NodeJS.ProcessEnv = {}): { client: Asynx; ledger: Ledger; spec: NodeSpec } {
    const client = new Asynx({ brokerUrl: rabbit.url, configFile: false, resultBackend: 'none', defaultQueue: `q-${name}` });
    clients.push(client);
    const ledger = new Ledger(join(tmp.dir, `${name}.ledger`));
    const spec: NodeSpec = { dir: tmp.dir, brokerUrl: rabbit.url, name, concurrency: 2, args: ['-Q', `q-${name}`], env: { ASYNX_RESULT_BACKEND: 'none', ...env } };
    return { client, ledger, spec };
  }

  it('kill -9 of a pool child, repeatedly (acks late): every task completes, duplicates counted', async () => {
    const { client, ledger, spec } = setup('child');
    await childKillRow({ broker: 'amqp', mode: 'acks-late', client, ledger, spec, nodes, n: scaled(10_000) });
  });

  it('kill -9 of a whole node, then start it again (acks late): every task completes', async () => {
    const n = scaled(10_000);
    const { client, ledger, spec } = setup('node', { ASYNX_ACKS_LATE: '1' });
    const t0 = Date.now();
    const ids = await publishLedger(client, n, ledger, 1);
    let node = await nodes.start(spec);
    const progress = new Progress(ledger);
    const kills: Array<[number, number]> = [];
    for (let k = 1; k <= 3; k++) {
      await waitFor(`${k * 25}% done`, () => ledger.size() >= n * 37 * 0.25 * k, 120_000);
      const at = Date.now();
      await node.kill9();
      kills.push([at, Date.now()]);
      node = await nodes.start(spec);
    }
    await ledger.waitAll(ids, 180_000);
    progress.stop();
    const { lost, duplicated } = ledger.tally(ids);
    recordRow({ fault: 'kill -9 node ×3 + restart', broker: 'amqp', mode: 'acks-late (≥1)', tasks: n, lost, duplicated, dropped: 0, recoverMs: progress.worst(kills), totalMs: Date.now() - t0 });
    await node.stop();
    assert.equal(lost, 0);
    // Per pool slot (-c 2) a kill -9 can repeat two tasks: the one running, and the one that had just
    // finished and whose ack frame had not reached the socket (acks leave one event-loop turn later, batched).
    // CI once saw 7 for 3 kills, above a bound of one per slot.
    assert.ok(duplicated <= 3 * 2 * 2, `duplicates only from tasks running or finishing at a kill (${duplicated})`);
  });

  it('SIGTERM to a node, then start it again, in a loop: every task completes exactly once', async () => {
    const n = scaled(2_000);
    const { client, ledger, spec } = setup('term');
    const t0 = Date.now();
    const ids = await publishLedger(client, n, ledger, 5);
    let node = await nodes.start(spec);
    const progress = new Progress(ledger);
    const restarts: Array<[number, number]> = [];
    while (ledger.tally(ids).lost > 0 && restarts.length < 6) {
      await sleep(600);
      if (ledger.tally(ids).lost === 0) break;
      const at = Date.now();
      assert.equal(await node.stop('SIGTERM', 30_000), 0, 'warm shutdown exits 0');
      restarts.push([at, Date.now()]);
      node = await nodes.start(spec);
    }
    await ledger.waitAll(ids, 120_000);
    progress.stop();
    const { lost, duplicated } = ledger.tally(ids);
    recordRow({ fault: `SIGTERM node ×${restarts.length} + start`, broker: 'amqp', mode: 'warm (=1)', tasks: n, lost, duplicated, dropped: 0, recoverMs: progress.worst(restarts), totalMs: Date.now() - t0 });
    await node.stop();
    assert.ok(restarts.length >= 3, `the fault was injected (${restarts.length} restarts)`);
    assert.equal(lost, 0);
    assert.equal(duplicated, 0);
  });

  it('RabbitMQ stopped for 10 s and started again (acks late): every task completes', async () => {
    const n = scaled(10_000);
    const { client, ledger, spec } = setup('down', { ASYNX_ACKS_LATE: '1' });
    const t0 = Date.now();
    const ids = await publishLedger(client, Math.floor(n / 2), ledger, 1);
    const node = await nodes.start(spec);
    const progress = new Progress(ledger);
    await waitFor('20% done', () => ledger.size() >= n * 37 * 0.2, 120_000);
    const downAt = Date.now();
    await rabbit.stop();
    // Publish the second half while the broker is down: a refused publish is retried by the caller.
    let refused = 0;
    let message = '';
    const upAgain = (async () => {
      await sleep(Math.max(0, 10_000 - (Date.now() - downAt)));
      await rabbit.start();
      return Date.now();
    })();
    const rest = n - ids.length;
    for (let i = 0; i < rest; i++) {
      for (;;) {
        try {
          ids.push((await client.sendTask('f.ledger', [ledger.path, 1])).id);
          break;
        } catch (err) {
          refused++;
          message ||= (err as Error).message;
          await sleep(200);
        }
      }
    }
    const upAt = await upAgain;
    await ledger.waitAll(ids, 180_000);
    progress.stop();
    const { lost, duplicated } = ledger.tally(ids);
    recordRow({ fault: `RabbitMQ down ${((upAt - downAt) / 1000).toFixed(0)}s + restart`, broker: 'amqp', mode: 'acks-late (≥1)', tasks: n, lost, duplicated, dropped: 0, recoverMs: progress.resumeAfter(upAt), totalMs: Date.now() - t0, note: `${refused} publish attempts refused` });
    assert.equal(node.isDone(), false, `the worker rode out the outage:\n${node.log().slice(-2000)}`);
    await node.stop();
    assert.ok(upAt - downAt >= 10_000, 'the broker was down for 10 s');
    assert.ok(refused > 0, 'publishes were refused while the broker was down');
    assert.match(message, /RabbitMQ|broker|reach|connect/i);
    assert.equal(lost, 0);
  });
});
