// kombu's Redis key layout: queue lists per priority step, binding sets, the ack-emulation keys; plus asynx's delayed store, rate buckets and dedupe keys.

/** Separator kombu puts between a queue and its priority step, and between the fields of a binding. */
export const SEP = '\x06\x16';
/** kombu's priority steps: a message goes to the list of the highest step not above its priority. 0 is consumed first. */
export const PRIORITY_STEPS: readonly number[] = [0, 3, 6, 9];
/** Hash: delivery tag → JSON `[envelope, exchange, routing_key]` of every message handed out and not acked. */
export const UNACKED = 'unacked';
/** Zset: delivery tag scored by the time (epoch seconds) it was handed out (or last renewed). */
export const UNACKED_INDEX = 'unacked_index';
/** String: the lock that one restore sweep at a time holds. */
export const UNACKED_MUTEX = 'unacked_mutex';
/**
 * Longest a sweep may hold the mutex before it lapses, ms (kombu's expiry). asynx uses the visibility timeout
 * when shorter (at least 5 s): a sweeper killed while holding the lock then blocks the others that long, not
 * 5 minutes; two sweeps at once are harmless anyway (each restore is one atomic compare-and-move).
 */
export const UNACKED_MUTEX_EXPIRE_MS = 300_000;
/** String: a global rate limit's next start (epoch ms, server time), per bucket key (asynx's, not kombu's). */
export const RATE_KEY_PREFIX = '_asynx.rate.';
/** Hash: who holds a dedupe key (task, owner, lease) and where its last message went (asynx's, not kombu's). */
export const DEDUPE_KEY_PREFIX = '_asynx.dedupe.';
/** Set: the list keys whose delayed zset may hold messages (asynx's, not kombu's). */
export const DELAYED_INDEX = '_asynx.delayed';
const DELAYED_PREFIX = '_asynx.delayed.';

/** The set holding an exchange's bindings. */
export function bindingKey(exchange: string): string {
  return `_kombu.binding.${exchange}`;
}

/** A member of a binding set: routing key, pattern and queue joined by {@link SEP}. */
export function bindingMember(routingKey: string, pattern: string, queue: string): string {
  return [routingKey, pattern, queue].join(SEP);
}

/** Parses a binding-set member; null when it is not three fields. */
export function parseBinding(member: string): { routingKey: string; pattern: string; queue: string } | null {
  const parts = member.split(SEP);
  if (parts.length !== 3) return null;
  return { routingKey: parts[0]!, pattern: parts[1]!, queue: parts[2]! };
}

/**
 * The priority step of a message priority, as kombu picks it: clamped to 0..9, then the highest step not above
 * it (0-2 → 0, 3-5 → 3, 6-8 → 6, 9 → 9). Anything not a number is priority 0.
 */
export function priorityStep(priority: unknown): number {
  const n = typeof priority === 'number' && Number.isFinite(priority) ? Math.max(0, Math.min(9, Math.trunc(priority))) : 0;
  let step = PRIORITY_STEPS[0]!;
  for (const s of PRIORITY_STEPS) if (s <= n) step = s;
  return step;
}

/** The list a message of `priority` waits in: the queue name itself for step 0, else `queue\x06\x16<step>`. */
export function listKey(queue: string, priority: unknown): string {
  const step = priorityStep(priority);
  return step === 0 ? queue : `${queue}${SEP}${step}`;
}

/** Every list of a queue, in the order they are consumed (step 0 first). */
export function listKeys(queue: string): string[] {
  return PRIORITY_STEPS.map((s) => (s === 0 ? queue : `${queue}${SEP}${s}`));
}

/** The queue a list key belongs to (kombu splits at the last separator; a queue list has none). */
export function queueOfList(key: string): string {
  const i = key.lastIndexOf(SEP);
  if (i < 0) return key;
  const step = Number(key.slice(i + SEP.length));
  return PRIORITY_STEPS.includes(step) && key.slice(i + SEP.length) !== '' ? key.slice(0, i) : key;
}

/** The zset of messages delayed for a list (scored by due time, epoch ms). */
export function delayedKey(list: string): string {
  return DELAYED_PREFIX + list;
}

/** The prefix {@link delayedKey} puts before a list key (the move script rebuilds the key from it). */
export const DELAYED_KEY_PREFIX = DELAYED_PREFIX;
