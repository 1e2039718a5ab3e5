// The worker's side of remote control on any broker: one call, the AMQP or Redis pidbox or the SQLite mailbox.

import type { LamportClock } from '../events/clock.js';
import { parseBrokerUrl } from '../urls.js';
import type { ControlHandler } from './request.js';

export type { ControlHandler } from './request.js';

/** Options of {@link startMailbox}. */
export interface MailboxOptions {
  /** The node's Lamport clock (the worker's `monitor.clock`): adjusted by requests, ticked by replies. */
  clock?: LamportClock;
  /** Bound on the first connect (AMQP), ms. @defaultValue 5000 */
  connectTimeoutMs?: number;
  /** Where a relative `sqlite://` path is from. @defaultValue process.cwd() */
  cwd?: string;
  /** Celery's `control_exchange` (AMQP). @defaultValue `celery` */
  namespace?: string;
}

/** A node's running mailbox. */
export interface Mailbox {
  /** Stops answering and releases the connection. Idempotent. */
  close(): Promise<void>;
}

/**
 * Starts answering remote control for `nodeName` with `handlers` (`ping` is built in). AMQP: kombu's
 * Mailbox (queue `<node>.celery.pidbox` on fanout `celery.pidbox`), so Python's `celery inspect` sees the
 * node; rejects with `asynx.worker.duplicateNode` when another live node holds that queue. Redis: kombu's
 * pidbox there (PSUBSCRIBE to `/{db}.celery.pidbox`, replies LPUSHed onto the client's list). SQLite: the
 * `control_requests` / `control_replies` tables of the broker file, polled every 50 ms.
 */
export async function startMailbox(brokerUrl: string, nodeName: string, handlers: Record<string, ControlHandler>, opts: MailboxOptions = {}): Promise<Mailbox> {
  const url = parseBrokerUrl(brokerUrl, opts.cwd);
  if (url.kind === 'sqlite') {
    const { startSqliteMailbox } = await import('./sqlite-mailbox.js');
    return startSqliteMailbox(url.path, nodeName, handlers, { ...(opts.clock ? { clock: opts.clock } : {}) });
  }
  if (url.kind === 'redis') {
    const { startRedisPidbox } = await import('./redis-pidbox.js');
    return startRedisPidbox(url.url, nodeName, handlers, {
      ...(opts.clock ? { clock: opts.clock } : {}),
      ...(opts.connectTimeoutMs !== undefined ? { connectTimeoutMs: opts.connectTimeoutMs } : {}),
      ...(opts.namespace !== undefined ? { namespace: opts.namespace } : {}),
    });
  }
  const { startPidbox } = await import('./pidbox.js');
  return startPidbox(brokerUrl, nodeName, handlers, {
    ...(opts.clock ? { clock: opts.clock } : {}),
    ...(opts.connectTimeoutMs !== undefined ? { connectTimeoutMs: opts.connectTimeoutMs } : {}),
    ...(opts.namespace !== undefined ? { namespace: opts.namespace } : {}),
  });
}
