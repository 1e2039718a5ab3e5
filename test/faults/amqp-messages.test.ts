// The message-level faults on RabbitMQ (one private node for the file): malformed messages published raw
// with amqplib and interleaved with good ones (the driver in malformed.ts, shared with Redis), a poison task
// that kills its pool child every time, and a rolling `asynx multi restart -b amqp://…` under load. Bad
// messages must end in the `asynx.dead` queue (with an `x-asynx-reason` header), never run, and get a FAILURE
// result where they carry an id.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import amqplib, { type ConfirmChannel } from 'amqplib';
import { Asynx } from '../../src/index.js';
import { multi, multiArgv, type MultiOptions } from '../../src/multi/index.js';
import { declareTaskQueue, toPublishOptions } from '../../src/transports/amqp-topology.js';
import { rabbitSkip, startRabbit, type RabbitNode } from '../helpers/rabbitmq.js';
import { BIN, FAULTS_APP, Ledger, Nodes, Progress, publishLedger, recordRow, scaled, scratch, waitFor } from './harness.js';
import { type DeadLetter, malformedRow } from './malformed.js';

const skip = rabbitSkip();
const DEAD = 'asynx.dead';
const MAX_DELIVERIES = 3;

describe('fault matrix on RabbitMQ: messages, poison, rolling restart', { skip }, () => {
  const tmp = scratch('amqp-msg');
  const nodes = new Nodes();
  const clients: Asynx[] = [];
  const multis: Array<{ names: string[]; opts: MultiOptions }> = [];
  let rabbit: RabbitNode;
  let conn: amqplib.ChannelModel | null = null;
  before(async () => {
    rabbit = await startRabbit();
    conn = await amqplib.connect(rabbit.url, { timeout: 10_000 });
    conn.on('error', () => undefined);
  });
  after(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    for (const m of multis) await multi.kill(m.names, m.opts).catch(() => undefined);
    await nodes.stopAll();
    await conn?.close().catch(() => undefined);
    await rabbit?.dispose();
    tmp.cleanup();
  });

  /** A fresh confirm channel on the test's own connection, with the task queue and the dead queue declared. */
  async function channel(queue: string): Promise<ConfirmChannel> {
    const ch = await conn!.createConfirmChannel();
    ch.on('error', () => undefined);
    await declareTaskQueue(ch, queue);
    await declareTaskQueue(ch, DEAD);
    return ch;
  }

  /** Drains the dead-letter queue (bounded), once it holds at least `atLeast` messages. */
  async function drainDead(atLeast: number, timeoutMs: number): Promise<DeadLetter[]> {
    const ch = await conn!.createChannel();
    ch.on('error', () => undefined);
    try {
      await waitFor(`${atLeast} messages in ${DEAD}`, async () => (await ch.checkQueue(DEAD)).messageCount >= atLeast, timeoutMs, 200);
      const out: DeadLetter[] = [];
      for (;;) {
        const m = await ch.get(DEAD, { noAck: true });
        if (!m) break;
        const h = (m.properties.headers ?? {}) as Record<string, unknown>;
        out.push({ reason: String(h['x-asynx-reason'] ?? ''), queue: String(h['x-asynx-queue'] ?? ''), id: typeof h.id === 'string' ? h.id : null, size: m.content.length });
      }
      return out;
    } finally {
      await ch.close().catch(() => undefined);
    }
  }

  it('malformed messages published raw are dead-lettered with their reason; every good task completes once', async () => {
    const queue = 'q-bad';
    const ch = await channel(queue);
    try {
      await malformedRow(
        {
          broker: 'amqp',
          url: rabbit.url,
          queue,
          deadName: DEAD,
          note: 'published raw with amqplib',
          send: (out) => {
            if (!('wire' in out)) throw new Error('AMQP has no raw items: send a task message');
            const { properties, headers, body } = out.wire;
            ch.publish('', queue, Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8'), toPublishOptions(properties, headers));
          },
          flush: () => ch.waitForConfirms(),
          drainDead,
        },
        { dir: tmp.dir, nodes },
      );
    } finally {
      await ch.close().catch(() => undefined);
    }
  });

  it(`a poison task is dead-lettered after ${MAX_DELIVERIES} deliveries (acks late) with a reason; the rest are unaffected`, async () => {
    const n = scaled(10_000);
    const queue = 'q-poison';
    const ledger = new Ledger(join(tmp.dir, 'poison.ledger'));
    const poisonLog = new Ledger(join(tmp.dir, 'poison.runs'));
    const client = new Asynx({ brokerUrl: rabbit.url, configFile: false, resultBackend: 'none', defaultQueue: queue });
    clients.push(client);
    const t0 = Date.now();
    const ids = await publishLedger(client, Math.floor(n / 2), ledger, 0);
    const poison = await client.sendTask('f.poison', [poisonLog.path]);
    ids.push(...(await publishLedger(client, n - ids.length, ledger, 0)));
    const node = await nodes.start({ dir: tmp.dir, brokerUrl: rabbit.url, name: 'poison', concurrency: 2, args: ['-Q', queue], env: { ASYNX_RESULT_BACKEND: 'none', ASYNX_ACKS_LATE: '1', ASYNX_MAX_DELIVERIES: String(MAX_DELIVERIES) } });
    const progress = new Progress(ledger);
    await ledger.waitAll(ids, 150_000);
    const dead = await drainDead(1, 60_000);
    progress.stop();
    const { lost, duplicated } = ledger.tally(ids);
    const runs = [...poisonLog.counts().values()][0] ?? 0;
    recordRow({ fault: 'poison task (kills its child)', broker: 'amqp', mode: 'acks-late (≥1)', tasks: n + 1, lost, duplicated, dropped: 0, recoverMs: null, totalMs: Date.now() - t0, note: `poison ran ${runs}× (ASYNX_MAX_DELIVERIES=${MAX_DELIVERIES}), then in ${DEAD}` });
    const code = await node.stop();
    const log = node.log();
    assert.equal(code, 0);
    assert.equal(lost, 0);
    assert.ok(duplicated <= 2, `duplicates only from tasks running when a child died (${duplicated})`);
    assert.equal(dead.length, 1, `only the poison is in ${DEAD}`);
    assert.equal(dead[0]!.id, poison.id, 'the dead letter is the poison message');
    assert.equal(dead[0]!.queue, queue);
    assert.match(dead[0]!.reason, new RegExp(`delivered ${MAX_DELIVERIES + 1} times without completing`), 'the reason says why');
    assert.equal(runs, MAX_DELIVERIES, `the poison ran exactly ${MAX_DELIVERIES} times`);
    assert.match(log, /moving it to the dead-letter queue/);
  });

  it('rolling `asynx multi restart -b amqp://…` under load: every task completes exactly once', async () => {
    const n = scaled(2_000);
    const queue = 'q-multi';
    const names = ['am1', 'am2'];
    const opts: MultiOptions = {
      cwd: tmp.dir,
      env: { ...process.env, NO_COLOR: '1', ASYNX_RESULT_BACKEND: 'none' },
      app: FAULTS_APP,
      concurrency: 2,
      broker: rabbit.url,
      queues: [queue],
      loglevel: 'warning',
      hostname: 'localhost',
      pidfile: join(tmp.dir, 'run/%n.pid'),
      logfile: join(tmp.dir, 'log/%n%I.log'),
      startTimeout: 60,
      timeout: 60,
      killAfter: 90,
    };
    multis.push({ names, opts });
    // The CLI's argv for the same nodes, with the broker as `-b amqp://…`.
    const cliArgs = [BIN, 'multi', 'restart', ...multiArgv(names, { ...opts, broker: undefined }), '-b', rabbit.url];
    const restartCli = () =>
      new Promise<{ code: number | string; out: string }>((resolve) => {
        execFile(process.execPath, cliArgs, { cwd: tmp.dir, env: opts.env, timeout: 150_000, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
          const e = err as (Error & { code?: number | string; signal?: string }) | null;
          resolve({ code: e ? (e.code ?? e.signal ?? -1) : 0, out: `${stdout}${stderr}` });
        });
      });
    const ledger = new Ledger(join(tmp.dir, 'multi.ledger'));
    const client = new Asynx({ brokerUrl: rabbit.url, configFile: false, resultBackend: 'none', defaultQueue: queue });
    clients.push(client);
    const t0 = Date.now();
    const ids = await publishLedger(client, n, ledger, 10); // 10 ms each: the load outlasts two rolling restarts
    const started = await multi.start(names, opts);
    assert.ok(started.ok, `multi start: ${JSON.stringify(started.nodes)}`);
    const progress = new Progress(ledger);
    const restarts: Array<[number, number]> = [];
    const done = () => ledger.tally(ids).lost === 0;
    while (!done() && restarts.length < 4) {
      await waitFor('some progress', () => ledger.size() > 0, 60_000);
      const at = Date.now();
      const r = await restartCli();
      assert.equal(r.code, 0, `asynx multi restart failed:\n${r.out}`);
      restarts.push([at, Date.now()]);
    }
    await ledger.waitAll(ids, 120_000);
    progress.stop();
    const { lost, duplicated } = ledger.tally(ids);
    recordRow({ fault: `rolling multi restart ×${restarts.length} (2 nodes)`, broker: 'amqp', mode: 'warm (=1)', tasks: n, lost, duplicated, dropped: 0, recoverMs: restarts.length ? Math.max(...restarts.map(([a, b]) => progress.longestStall(a, b))) : null, totalMs: Date.now() - t0, note: 'CLI `asynx multi restart -b amqp://…`; recover = longest stall during a restart' });
    const stopped = await multi.stopwait(names, opts);
    assert.ok(stopped.ok, `multi stopwait: ${JSON.stringify(stopped.nodes)}`);
    assert.ok(restarts.length >= 2, `the fault was injected (${restarts.length} restarts)`);
    assert.equal(lost, 0);
    assert.equal(duplicated, 0, 'a warm rolling restart runs nothing twice');
  });
});
