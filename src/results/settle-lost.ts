// Settling the tasks a killed worker node left running: FAILURE (WorkerLostError) unless already ready.

import { resolveConfig } from '../config.js';
import { BrokerUnavailableError, WorkerLostError } from '../errors.js';
import { encodeException, tracebackOf } from '../protocol/codec.js';
import { READY_STATES } from '../protocol/message.js';
import { redact } from '../util/redact.js';
import { withDeadline } from '../util/deadline.js';
import type { ResultBackend } from './backend.js';
import { errorBody } from './body.js';
import { createResultBackend } from './factory.js';

/** A task a node was running when it was killed (the status file's record of it). */
export interface LostTask {
  id: string;
  name: string;
  replyTo: string | null;
  /** Acked late: the broker redelivers it; it is left alone. */
  acksLate: boolean;
}

/** What {@link settleLostTasks} did, per task id. */
export interface SettleReport {
  /** FAILURE stored. */
  failed: string[];
  /** Already had a ready state (it finished before the kill): left as it was. */
  ready: string[];
  /** Acked late: left for the broker to redeliver. */
  redelivered: string[];
  /** Could not be settled (the backend failed): the record should be kept. */
  errors: Array<{ id: string; message: string }>;
}

/** Where the results of a dead node go (see the status file's `results`). */
export interface LostResultTarget {
  resultBackend: string;
  brokerUrl: string;
}

/** The WorkerLostError detail for a node killed while running a task. */
export function lostDetail(pid: number): string {
  return `worker node pid ${pid} was killed while running the task`;
}

/** Stores FAILURE with WorkerLostError for each acks-early task without a ready state. Never throws. */
export async function settleLostTasks(backend: ResultBackend, pid: number, tasks: readonly LostTask[]): Promise<SettleReport> {
  const report: SettleReport = { failed: [], ready: [], redelivered: [], errors: [] };
  for (const t of tasks) {
    if (t.acksLate) {
      report.redelivered.push(t.id);
      continue;
    }
    try {
      const known = await backend.get(t.id);
      if (known !== null && READY_STATES.has(known.status)) {
        report.ready.push(t.id);
        continue;
      }
      const lost = new WorkerLostError(lostDetail(pid), { taskId: t.id, pid });
      await backend.store({ taskId: t.id, replyTo: t.replyTo, taskName: t.name }, errorBody(t.id, 'FAILURE', { ...encodeException(lost), traceback: tracebackOf(lost) }));
      report.failed.push(t.id);
    } catch (err) {
      report.errors.push({ id: t.id, message: (err as Error).message });
    }
  }
  return report;
}

/**
 * Opens the result backend `target` names, settles `tasks` of the dead node `pid`, and closes it, within
 * `timeoutMs`. A backend that cannot be reached reports every acks-early task in `errors`.
 */
export async function settleLostTasksAt(target: LostResultTarget, pid: number, tasks: readonly LostTask[], timeoutMs: number): Promise<SettleReport> {
  const unreachable = (message: string): SettleReport => ({ failed: [], ready: [], redelivered: tasks.filter((t) => t.acksLate).map((t) => t.id), errors: tasks.filter((t) => !t.acksLate).map((t) => ({ id: t.id, message })) });
  if (tasks.every((t) => t.acksLate)) return unreachable('');
  let backend: ResultBackend | null = null;
  try {
    backend = await createResultBackend(resolveConfig({ brokerUrl: target.brokerUrl, resultBackend: target.resultBackend, connectTimeout: `${timeoutMs}ms` }));
    const b = backend;
    return await withDeadline((async () => {
      await b.connect();
      return settleLostTasks(b, pid, tasks);
    })(), timeoutMs, () => new BrokerUnavailableError(`Result backend ${redact(target.resultBackend)} did not answer within ${timeoutMs} ms`));
  } catch (err) {
    return unreachable((err as Error).message);
  } finally {
    await backend?.close().catch(() => undefined);
  }
}
