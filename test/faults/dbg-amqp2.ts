import { setTimeout as sleep } from 'node:timers/promises';
import { AmqpTransport } from '../../src/transports/amqp.js';
import { buildTaskMessage } from '../../src/protocol/codec.js';
import { startRabbit } from '../helpers/rabbitmq.js';
const rabbit = await startRabbit();
try {
  const t = new AmqpTransport(rabbit.url, { connectTimeoutMs: 3000, publishTimeoutMs: 3000 });
  await t.declareQueue('q1');
  for (let i = 0; i < 20; i++) await t.publish('q1', buildTaskMessage('x', [i], {}, { queue: 'q1' }).message);
  let got = 0;
  const c = await t.consume(['q1'], 8, (d) => {
    got++;
    console.log(Date.now() % 100000, 'got', d.tag);
    setTimeout(() => void t.ack(d), 5);
  });
  await sleep(3000);
  console.log('got', got, await rabbit.ctl(['list_queues', 'name', 'messages_ready', 'messages_unacknowledged', 'consumers']));
  console.log((await import('node:fs')).readFileSync(`${rabbit.dir}/log/` + (await import('node:fs')).readdirSync(`${rabbit.dir}/log`).find((f: string) => f.endsWith('.log')), 'utf8').split('\n').filter((l: string) => /error|PRECONDITION|closing/i.test(l)).slice(0, 10).join('\n'));
  await c.cancel();
  await t.close();
} finally {
  await rabbit.dispose();
}
