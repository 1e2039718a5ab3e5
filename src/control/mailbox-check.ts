// AMQP: is a live node already consuming the remote-control mailbox `<node>.celery.pidbox` of this name?

import { AmqpConnection } from '../amqp/connection.js';
import { mailboxHeldError } from './duplicate-node.js';

/**
 * Rejects with `asynx.worker.duplicateNode` when the queue `<node>.<namespace>.pidbox` exists and has a
 * consumer: an asynx or Celery node of that name is answering remote control on this broker. A passive
 * declare (it creates nothing); a missing queue means the name is free. Bounded by `connectTimeoutMs`.
 */
export async function checkAmqpMailbox(brokerUrl: string, nodeName: string, opts: { connectTimeoutMs: number; namespace?: string | undefined }): Promise<void> {
  const queue = `${nodeName}.${opts.namespace ?? 'celery'}.pidbox`;
  const conn = new AmqpConnection(brokerUrl, { connectTimeoutMs: opts.connectTimeoutMs, connectionName: `asynx node-name check ${nodeName}` });
  let consumers = 0;
  try {
    const deadline = Date.now() + opts.connectTimeoutMs;
    const what = `check whether the node name ${nodeName} is taken`;
    const c = await conn.get(deadline, what);
    const ch = await conn.bounded(c.createChannel(), deadline, what);
    ch.on('error', () => undefined); // a missing queue closes the channel with 404: expected
    const ok = await conn.bounded(ch.checkQueue(queue), deadline, what).catch((err: unknown) => {
      if ((err as { code?: unknown }).code === 404) return null;
      throw err;
    });
    consumers = ok?.consumerCount ?? 0;
  } finally {
    await conn.close();
  }
  if (consumers > 0) throw mailboxHeldError(nodeName, queue, consumers);
}
