// One node name per broker: refuse to start a second worker whose name a live node already holds (issue 9).

import type { Transport } from '../transports/transport.js';
import { SqliteTransport } from '../transports/sqlite.js';
import type { Releasers } from '../util/close-once.js';
import type { NodeClaimOptions } from './duplicate-node.js';

export { duplicateNodeError, mailboxHeldError, type NodeClaimOptions } from './duplicate-node.js';

/**
 * Checks that no live node on this broker has `nodeName`, before the worker consumes; rejects with
 * `asynx.worker.duplicateNode` (exit 73) if one has. Per broker:
 * - AMQP: the node's remote-control queue `<node>.celery.pidbox` has a consumer (an asynx or Celery node
 *   answering `celery inspect` under that name). Checked here, before the pool starts, and again by
 *   startPidbox when it declares the queue; not a lock: two nodes declaring within milliseconds both pass.
 * - SQLite: a row in the broker file's `nodes` table, written in one transaction (so a lock), its
 *   heartbeat refreshed every 2 s and the row deleted at stop; a row whose heartbeat is 10 s old, or
 *   whose pid is gone on this host, is stale and taken over.
 * - Redis: the key `_asynx.node.<name>`, SET NX (so a lock) with a 10 s lease renewed every 2 s and
 *   deleted at stop; a claim whose pid is gone on this host is taken over at once, another host's once
 *   its lease lapsed. Redis has no consumer counts, so a Python Celery node of the name is not seen.
 * Whatever the claim holds is released by `releasers` (registered here, at creation).
 */
export async function claimNodeName(transport: Transport, config: { brokerUrl: string; connectTimeoutMs: number }, nodeName: string, releasers: Releasers, opts: NodeClaimOptions = {}): Promise<void> {
  if (transport instanceof SqliteTransport) {
    const { claimSqliteNode } = await import('./sqlite-node-claim.js');
    const claim = await claimSqliteNode(transport.path, nodeName, opts);
    releasers.add('node name', () => claim.close());
    return;
  }
  if (transport.kind === 'redis') {
    const { claimRedisNode } = await import('./redis-node-claim.js');
    const claim = await claimRedisNode(config.brokerUrl, nodeName, { ...opts, connectTimeoutMs: config.connectTimeoutMs });
    releasers.add('node name', () => claim.close());
    return;
  }
  if (transport.kind === 'amqp') {
    const { checkAmqpMailbox } = await import('./mailbox-check.js');
    await checkAmqpMailbox(config.brokerUrl, nodeName, { connectTimeoutMs: config.connectTimeoutMs, namespace: opts.namespace });
  }
}
