// openDeadLetters(): the dead-letter store of a broker URL or of an app's configured broker.

import type { Asynx } from '../app/app.js';
import { optionsFromEnv, resolveConfig, type ResolvedConfig } from '../config.js';
import { parseBrokerUrl } from '../urls.js';
import type { DeadLetters } from './dead-letters.js';

/** Options of {@link openDeadLetters}. */
export interface OpenDeadLettersOptions {
  /** Directory relative `sqlite://` paths are from. @defaultValue the app's cwd, else process.cwd() */
  cwd?: string;
}

/**
 * Opens the dead-letter store of a broker: a `sqlite://`, `amqp://` or `redis://` URL (timeouts from `ASYNX_*`),
 * or an app (its resolved config: broker, timeouts, `maxPriority`). Close it with `close()`.
 *
 * @example
 * ```ts
 * const dead = await openDeadLetters('sqlite://./.asynx/asynx.db');
 * for (const d of await dead.list()) console.log(d.id, d.task, d.reason);
 * await dead.requeue('all'); // after deploying a worker that can run them
 * await dead.close();
 * ```
 * @see {@link DeadLetters} for what each call does on each broker.
 */
export async function openDeadLetters(target: string | Asynx, opts: OpenDeadLettersOptions = {}): Promise<DeadLetters> {
  let config: ResolvedConfig;
  let cwd: string;
  if (typeof target === 'string') {
    config = resolveConfig(optionsFromEnv(), { brokerUrl: target });
    cwd = opts.cwd ?? process.cwd();
  } else {
    config = await target.config();
    cwd = opts.cwd ?? target.cwd;
  }
  const broker = parseBrokerUrl(config.brokerUrl, cwd);
  if (broker.kind === 'sqlite') {
    const { SqliteDeadLetters } = await import('./sqlite.js');
    return new SqliteDeadLetters(broker.path);
  }
  if (broker.kind === 'redis') {
    const { RedisDeadLetters } = await import('./redis.js');
    return new RedisDeadLetters(broker.url, { connectTimeoutMs: config.connectTimeoutMs, publishTimeoutMs: config.publishTimeoutMs });
  }
  const { AmqpDeadLetters } = await import('./amqp.js');
  const dead = new AmqpDeadLetters(broker.url, {
    connectTimeoutMs: config.connectTimeoutMs,
    publishTimeoutMs: config.publishTimeoutMs,
    ...(config.maxPriority !== null ? { maxPriority: config.maxPriority } : {}),
  });
  return dead;
}
