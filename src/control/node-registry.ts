// One node name per broker: refuse to start a second worker whose name a live node already holds (issue 9).

import { AsynxError, ExitCode } from '../errors.js';
import type { Transport } from '../transports/transport.js';
import { SqliteTransport } from '../transports/sqlite.js';
import type { Releasers } from '../util/close-once.js';

/** Options of {@link claimNodeName} (tests shorten the timers). */
export interface NodeClaimOptions {
  /** SQLite: how often the claim's heartbeat is refreshed, ms. @defaultValue 2000 */
  refreshMs?: number;
  /** SQLite: a claim whose heartbeat is older than this is free, ms. @defaultValue 5 × refreshMs */
  staleMs?: number;
  /** AMQP: Celery's `control_exchange`. @defaultValue `celery` */
  namespace?: string;
}

/**
 * `-n w1@host` while another live node named `w1@host` works on the same broker. `holder` says what
 * shows it ("pid 41 on box, last seen 0.4 s ago"). Exit 73, as for a live pidfile: the name is taken.
 */
export function duplicateNodeError(nodeName: string, holder: string, facts: Record<string, unknown> = {}): AsynxError {
  return new AsynxError(
    'asynx.worker.duplicateNode',
    `A node named ${nodeName} is already using this broker (${holder}): start this worker under another name, e.g. -n othername@%h, or stop the other node first`,
    { exitCode: ExitCode.cantCreate, facts: { node: nodeName, ...facts } },
  );
}

/** AMQP: the node's remote-control queue already has `consumers` (a live asynx or Celery node of this name). */
export function mailboxHeldError(nodeName: string, queue: string, consumers: number): AsynxError {
  return duplicateNodeError(nodeName, `its remote-control queue ${queue} has ${consumers} consumer${consumers === 1 ? '' : 's'}`, { queue, consumers });
}

/**
 * Checks that no live node on this broker has `nodeName`, before the worker consumes; rejects with
 * `asynx.worker.duplicateNode` (exit 73) if one has. Per broker:
 * - AMQP: the node's remote-control queue `<node>.celery.pidbox` has a consumer (an asynx or Celery node
 *   answering `celery inspect` under that name). Checked here, before the pool starts, and again by
 *   startPidbox when it declares the queue; not a lock: two nodes declaring within milliseconds both pass.
 * - SQLite: a row in the broker file's `nodes` table, written in one transaction (so a lock), its
 *   heartbeat refreshed every 2 s and the row deleted at stop; a row whose heartbeat is 10 s old, or
 *   whose pid is gone on this host, is stale and taken over.
 * Whatever the claim holds is released by `releasers` (registered here, at creation).
 */
export async function claimNodeName(transport: Transport, config: { brokerUrl: string; connectTimeoutMs: number }, nodeName: string, releasers: Releasers, opts: NodeClaimOptions = {}): Promise<void> {
  if (transport instanceof SqliteTransport) {
    const { claimSqliteNode } = await import('./sqlite-node-claim.js');
    const claim = await claimSqliteNode(transport.path, nodeName, opts);
    releasers.add('node name', () => claim.close());
    return;
  }
  if (transport.kind === 'amqp') {
    const { checkAmqpMailbox } = await import('./mailbox-check.js');
    await checkAmqpMailbox(config.brokerUrl, nodeName, { connectTimeoutMs: config.connectTimeoutMs, namespace: opts.namespace });
  }
}
