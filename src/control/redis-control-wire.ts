// The remote-control client's side of Redis, as kombu's Mailbox there: PUBLISH the request, BRPOP the private reply list.

import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { bindingKey, bindingMember, listKeys } from '../transports/redis-keys.js';
import { boundedRedis, closeRedis, connectRedis, fanoutChannel, packMessage, redisDb, unpackMessage } from '../transports/redis-pubsub.js';
import { Releasers } from '../util/close-once.js';
import { settlesWithin } from '../util/deadline.js';
import type { ControlWire } from './control-wire.js';
import { ReplyCollectors } from './reply-collectors.js';
import { replyExchangeName, requestExchangeName } from './request.js';

/** BRPOP's wait per round, s: the reader notices close() within it. */
const BRPOP_S = 1;

/**
 * Connects and binds, as kombu does: the reply list `<oid>.reply.<ns>.pidbox` bound to the direct exchange
 * `reply.<ns>.pidbox` with routing key `<oid>` (member of `_kombu.binding.reply.<ns>.pidbox`), read with
 * BRPOP on a connection of its own. A request is a kombu envelope PUBLISHed on `/{db}.<ns>.pidbox`.
 * Replies are matched by their `ticket` header; others are dropped. close() removes the binding and the list.
 */
export async function redisControlWire(url: string, opts: { connectTimeoutMs: number; namespace: string }): Promise<ControlWire> {
  const exchange = requestExchangeName(opts.namespace);
  const replyExchange = replyExchangeName(opts.namespace);
  const oid = randomUUID();
  const queue = `${oid}.${replyExchange}`;
  const member = bindingMember(oid, '', queue);
  const channel = fanoutChannel(redisDb(url), exchange, '');
  const collectors = new ReplyCollectors();
  const releasers = new Releasers();
  const cmd = await connectRedis(url, 'asynx-control', { connectTimeoutMs: opts.connectTimeoutMs });
  releasers.add('close the Redis connection', () => closeRedis(cmd));
  let blocking: Redis;
  try {
    blocking = await connectRedis(url, 'asynx-control-replies', { connectTimeoutMs: opts.connectTimeoutMs, blocking: true });
  } catch (err) {
    await releasers.close();
    throw err;
  }
  releasers.add('remove the reply list and its binding', async () => {
    await settlesWithin(cmd.multi().srem(bindingKey(replyExchange), member).del(...listKeys(queue)).exec(), 1_000);
  });
  const bind = () => cmd.sadd(bindingKey(replyExchange), member);
  cmd.on('ready', () => void bind().catch(() => undefined));
  try {
    await boundedRedis(url, bind(), opts.connectTimeoutMs, 'declare the remote-control reply list');
  } catch (err) {
    blocking.disconnect();
    await releasers.close();
    throw err;
  }

  const onReply = (raw: string): void => {
    const msg = unpackMessage(raw);
    if (!msg) return;
    collectors.deliver(msg.headers.ticket, msg.body, msg.headers.clock);
  };
  const reader = (async () => {
    while (!releasers.closed) {
      try {
        const got = await blocking.brpop(...listKeys(queue), BRPOP_S);
        if (got) onReply(got[1]);
      } catch {
        if (releasers.closed) return;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  })();
  releasers.add('stop reading replies', async () => {
    blocking.disconnect();
    await reader;
  });

  return {
    async send(req, headers, collect) {
      // Our own reply list's routing key, whatever the caller put there.
      if (req.reply_to) req.reply_to = { exchange: replyExchange, routing_key: oid };
      const raw = packMessage({ exchange, routingKey: '', body: JSON.stringify(req), headers: { clock: headers.clock, expires: headers.expires } });
      await collectors.send(collect, () => boundedRedis(url, cmd.publish(channel, raw), opts.connectTimeoutMs, 'send a remote-control request').then(() => undefined));
    },
    close: () => releasers.close(),
  };
}
