import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Asynx } from '../../src/index.js';
import { startRabbit } from '../helpers/rabbitmq.js';
import { Ledger, Nodes, publishLedger, scratch } from './harness.js';
const rabbit = await startRabbit();
const tmp = scratch('dbg');
const nodes = new Nodes();
try {
  const client = new Asynx({ brokerUrl: rabbit.url, configFile: false, resultBackend: 'none', defaultQueue: 'q-term' });
  const ledger = new Ledger(join(tmp.dir, 't.ledger'));
  const spec = { dir: tmp.dir, brokerUrl: rabbit.url, name: 'term', concurrency: 2, args: ['-Q', 'q-term', '-l', 'info'], env: { ASYNX_RESULT_BACKEND: 'none' } };
  const ids = await publishLedger(client, 400, ledger, 5);
  let node = await nodes.start(spec);
  for (let i = 0; i < 0; i++) {
    await sleep(600);
    console.log('ledger', ledger.counts().size, await rabbit.ctl(['list_queues', 'name', 'messages_ready', 'messages_unacknowledged', 'consumers']));
    console.log('stop code', await node.stop('SIGTERM', 30000));
    console.log('after stop ledger', ledger.counts().size, await rabbit.ctl(['list_queues', 'name', 'messages_ready', 'messages_unacknowledged', 'consumers']));
    node = await nodes.start(spec);
  }
  await sleep(5000);
  console.log('final ledger', ledger.counts().size, ids.length, await rabbit.ctl(['list_queues', 'name', 'messages_ready', 'messages_unacknowledged', 'consumers']));
  console.log(node.log().split('\n').filter((l) => !/succeeded|received/.test(l)).join('\n'));
  await client.close();
  const fs = await import('node:fs');
  const lf = fs.readdirSync(`${rabbit.dir}/log`).find((f) => f.endsWith('.log'))!;
  console.log(fs.readFileSync(`${rabbit.dir}/log/${lf}`, 'utf8').split('\n').filter((l) => /error|PRECONDITION|exception/i.test(l)).slice(0, 10).join('\n'));
} finally {
  await nodes.stopAll();
  await rabbit.dispose();
  console.log('dir', tmp.dir);
}
