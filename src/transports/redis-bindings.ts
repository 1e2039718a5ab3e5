// kombu's exchange emulation on Redis: bindings written on declare, and the queues an exchange and routing key reach.

import type { Redis } from 'ioredis';
import { bindingKey, bindingMember, parseBinding } from './redis-keys.js';

/** Declares a task queue as Celery does: its same-named direct exchange bound to it with the queue name as routing key. */
export async function declareBinding(cmd: Redis, queue: string): Promise<void> {
  await cmd.sadd(bindingKey(queue), bindingMember(queue, '', queue));
}

/** AMQP topic match: `*` is one word, `#` zero or more. */
function topicMatch(pattern: string, routingKey: string): boolean {
  const p = pattern.split('.');
  const k = routingKey.split('.');
  const at = (i: number, j: number): boolean => {
    if (i === p.length) return j === k.length;
    if (p[i] === '#') return at(i + 1, j) || (j < k.length && at(i, j + 1));
    return j < k.length && (p[i] === '*' || p[i] === k[j]) && at(i + 1, j + 1);
  };
  return at(0, 0);
}

/**
 * The queues a message published to `exchange` with `routingKey` goes to, from the exchange's binding set: the
 * routing key itself for the anonymous exchange, bindings with an equal routing key (direct) or a matching
 * pattern (topic) otherwise. Falls back to the routing key when nothing matches (kombu would drop it).
 */
export async function lookupQueues(cmd: Redis, exchange: string, routingKey: string): Promise<string[]> {
  if (exchange === '') return [routingKey];
  const members = await cmd.smembers(bindingKey(exchange));
  const queues = new Set<string>();
  for (const m of members) {
    const b = parseBinding(m);
    if (!b) continue;
    if (b.routingKey === routingKey || (b.pattern !== '' && topicMatch(b.pattern, routingKey))) queues.add(b.queue);
  }
  return queues.size ? [...queues] : [routingKey];
}
