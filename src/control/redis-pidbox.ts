// Celery remote control on Redis, as kombu's pidbox runs there: requests by pub/sub, replies LPUSHed onto the client's list.

import { LamportClock } from '../events/clock.js';
import { bindingKey, bindingMember } from '../transports/redis-keys.js';
import { closeRedis, connectRedis, fanoutChannel, pushDirect, packMessage, redisDb, subscribeFanout, unpackMessage } from '../transports/redis-pubsub.js';
import { Releasers } from '../util/close-once.js';
import { settlesWithin } from '../util/deadline.js';
import { admitRequest, answerRequest, replyAddress, requestExchangeName, type ControlHandler } from './request.js';

/** Options of {@link startRedisPidbox}. */
export interface RedisPidboxOptions {
  clock?: LamportClock;
  connectTimeoutMs?: number;
  namespace?: string;
}

/**
 * Starts this node's mailbox on Redis: PSUBSCRIBE to `/{db}.celery.pidbox` (the channel kombu publishes
 * the fanout exchange `celery.pidbox` on), with the binding `_kombu.binding.celery.pidbox` →
 * `<node>.celery.pidbox` recorded as kombu records it (removed at close). A reply is a kombu envelope
 * LPUSHed onto each list the request's `reply_to` exchange binds its routing key to
 * (`<oid>.reply.celery.pidbox`), checked atomically with the push; with no binding (the client is gone)
 * it is dropped. Expired requests and
 * those for other nodes are ignored. Redis has no consumer counts: a twin node is refused by the node claim
 * (redis-node-claim.ts) before the worker consumes, not here.
 */
export async function startRedisPidbox(url: string, nodeName: string, handlers: Record<string, ControlHandler>, opts: RedisPidboxOptions = {}): Promise<{ close(): Promise<void> }> {
  const ns = opts.namespace ?? 'celery';
  const exchange = requestExchangeName(ns);
  const queue = `${nodeName}.${ns}.pidbox`;
  const connectTimeoutMs = opts.connectTimeoutMs ?? 5_000;
  const clock = opts.clock ?? new LamportClock();
  const releasers = new Releasers();
  const cmd = await connectRedis(url, `asynx-pidbox-${nodeName}`, { connectTimeoutMs });
  releasers.add('close the Redis connection', () => closeRedis(cmd));
  const member = bindingMember('', '', queue);
  const bind = () => cmd.sadd(bindingKey(exchange), member).catch(() => undefined);
  cmd.on('ready', () => void bind()); // again after a reconnect: a restarted Redis lost it

  const onRequest = async (payload: string): Promise<void> => {
    const msg = unpackMessage(payload);
    if (!msg) return;
    const req = admitRequest(msg.headers, msg.body, nodeName, clock);
    if (!req) return;
    const { reply, afterReply } = await answerRequest(handlers, req);
    const to = replyAddress(req);
    if (!to) return afterReply(); // a cast: no reply
    try {
      const raw = packMessage({ exchange: to.exchange, routingKey: to.routing_key, body: JSON.stringify({ [nodeName]: reply }), headers: { ticket: req.ticket ?? null, clock: clock.tick() }, deliveryMode: 1 });
      await pushDirect(cmd, to.exchange, to.routing_key, raw); // none bound: the client is gone, the reply is dropped
    } catch {
      // Redis went away: the caller times out, as with Celery
    }
    afterReply();
  };

  try {
    await bind();
    const sub = await subscribeFanout(url, `asynx-pidbox-sub-${nodeName}`, [fanoutChannel(redisDb(url), exchange, '')], (_channel, payload) => void onRequest(payload), { connectTimeoutMs });
    releasers.add('unsubscribe', () => sub.close());
    releasers.add('remove the mailbox binding', async () => {
      await settlesWithin(cmd.srem(bindingKey(exchange), member), 1_000);
    });
  } catch (err) {
    await releasers.close();
    throw err;
  }
  return { close: () => releasers.close() };
}
