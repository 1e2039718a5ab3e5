// The duplicate-node error and the claim options, shared by the SQLite and Redis claims and the AMQP mailbox check.

import { AsynxError, ExitCode } from '../errors.js';

/** Options of {@link claimNodeName} (tests shorten the timers). */
export interface NodeClaimOptions {
  /** SQLite, Redis: how often the claim's heartbeat (Redis: its lease) is refreshed, ms. @defaultValue 2000 */
  refreshMs?: number;
  /** SQLite: a claim whose heartbeat is older than this is free; Redis: the lease of the claim key, ms. @defaultValue 5 × refreshMs */
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
