import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Asynx } from '../../src/index.js';
import { AmqpTransport } from '../../dist/transports/amqp.js';
import { startRabbit } from '../helpers/rabbitmq.js';
import { Ledger, publishLedger, scratch, FAULTS_APP } from './harness.js';
const proto = AmqpTransport.prototype as any;
const orig = proto.onConsumerChannelClosed;
proto.onConsumerChannelClosed = function (c: any, ch: any) { console.log('CHANNEL CLOSED', new Error().stack?.split('\n').slice(1, 12).join('\n')); return orig.call(this, c, ch); };
const origMsg = proto.onMessage;
proto.onMessage = function (...a: any[]) { console.log('onMessage'); return origMsg.apply(this, a); };
const { EventEmitter } = await import('node:events');
const em = EventEmitter.prototype.emit;
EventEmitter.prototype.emit = function (this: any, ev: string, ...a: any[]) { if (ev === 'error' && this.constructor?.name?.includes('Channel')) console.log('CH ERROR', a[0]?.message); return em.call(this, ev, ...a); } as any;
const rabbit = await startRabbit();
const tmp = scratch('dbg');
try {
  process.env.ASYNX_BROKER_URL = rabbit.url;
  process.env.ASYNX_RESULT_BACKEND = 'none';
  const client = new Asynx({ brokerUrl: rabbit.url, configFile: false, resultBackend: 'none', defaultQueue: 'q-term' });
  const ledger = new Ledger(join(tmp.dir, 't.ledger'));
  await publishLedger(client, 20, ledger, 5);
  const { runWorker } = await import('../../src/cli/worker.js');
  const { Worker } = await import('../../src/worker/worker.js');
  const origStart = Worker.prototype.start;
  let w: any;
  Worker.prototype.start = function () { w = this; return origStart.call(this); };
  const run = runWorker({ app: FAULTS_APP, concurrency: '2', queues: 'q-term', loglevel: 'info' }, tmp.dir);
  for (let i = 0; i < 300 && w?.state !== 'running'; i++) await sleep(50);
  await sleep(3000);
  console.log('ledger', ledger.counts().size);
  await w.stop('warm');
  await run;
  await client.close();
} finally {
  await rabbit.dispose();
  tmp.cleanup();
}
