// What happens after a task attempt: store its state, ack or give back, retry, callbacks and errbacks.

import { encodeError, type EncodedError } from '../app/execute.js';
import { AsynxError, NotRegistered, TaskRevokedError, TimeLimitExceeded, WorkerLostError } from '../errors.js';
import type { TaskRequest } from '../protocol/codec.js';
import type { Signature } from '../protocol/message.js';
import { READY_STATES, type ResultBody } from '../protocol/message.js';
import { onReadyState } from '../canvas/chord-part.js';
import { sendStep, type StepIo, type StepSend } from '../canvas/embedded.js';
import { errorBody, successBody } from '../results/body.js';
import type { Delivery } from '../transports/transport.js';
import type { TaskException } from './events.js';
import { retryMessage, signatureMessage } from './follow-ups.js';
import { internalPublishMs, taskBase, type Pending, type TaskIo } from './pending.js';
import type { JobResult } from './pool/task-pool.js';

/** An encoded error as an event's exception. */
export function exceptionOf(e: EncodedError): TaskException {
  return { type: e.exc_type, message: String(e.exc_message[0] ?? ''), traceback: e.traceback };
}

/** Stores results, acks, and sends follow-up messages. */
export class Outcomes {
  constructor(private readonly io: TaskIo) {}

  private error(message: string, taskId?: string): void {
    this.io.events.emit('worker:error', taskId === undefined ? { message } : { message, taskId });
  }

  /** Acks once. */
  async ack(p: Pending): Promise<void> {
    if (p.acked) return;
    p.acked = true;
    await this.io.transport.ack(p.delivery);
  }

  /** Gives an unacked message back to its queue (at most once). */
  async requeue(p: Pending): Promise<void> {
    if (p.acked) return;
    p.acked = true;
    await this.io.transport.reject(p.delivery, { requeue: true });
  }

  /** Writes a state unless the task ignores results; a failed write is reported, never thrown. */
  async store(p: Pending, state: ResultBody): Promise<void> {
    const body = withGroup(p.req, state);
    if (!(p.req.ignoreResult || p.def.options.ignoreResult)) {
      try {
        await this.io.backend.store({ taskId: p.req.id, replyTo: p.req.replyTo, taskName: p.req.task }, body);
      } catch (err) {
        this.error(`Storing state ${body.status} of ${p.req.task}[${p.req.id}] failed: ${(err as Error).message}`, p.req.id);
      }
    }
    if (READY_STATES.has(body.status)) await this.canvasReady(p.req, body);
  }

  /** The canvas part of a ready state: count a chord member (maybe send the body), fail the rest of a chain. */
  private async canvasReady(req: TaskRequest, body: ResultBody): Promise<void> {
    if (!req.embed.chord && !req.embed.chain) return;
    try {
      await onReadyState(req, body, this.stepIo(req));
    } catch (err) {
      this.error(`Chord/chain bookkeeping of ${req.task}[${req.id}] failed: ${(err as Error).message}`, req.id);
    }
  }

  /**
   * A message that cannot run: dead-letter it, and store a FAILURE where it has an id. A decoded one (`req`:
   * a task not registered here) is a ready state for its chain and chord too, as Celery's `on_unknown_task`
   * marks it failed: the rest of its chain fails with it, its chord counts it (its body gets a ChordError).
   */
  async invalid(d: Delivery, err: AsynxError, id: string | null, replyTo: string | null, req?: TaskRequest): Promise<void> {
    if (!(err instanceof NotRegistered)) this.io.events.emit('message:invalid', { tag: String(d.tag), queue: d.queue, taskId: id, code: err.code, message: err.message, timestamp: Date.now() });
    await this.io.transport.reject(d, { requeue: false, reason: `${err.code}: ${err.message}` });
    if (!id) return;
    const body = errorBody(id, 'FAILURE', encodeError(err));
    await this.io.backend.store({ taskId: id, replyTo }, req ? withGroup(req, body) : body).catch((e) => this.error(`Storing the failure of ${id} failed: ${(e as Error).message}`, id));
    if (req) await this.canvasReady(req, body);
  }

  /** Records how an attempt ended, then acks (unless it went back to the broker). */
  async finish(p: Pending, r: JobResult): Promise<void> {
    if (p.abandoned) return;
    const { req } = p;
    const base = () => taskBase(p, this.io.hostname);
    const runtime = (Date.now() - p.startedAt) / 1000;
    const events = this.io.events;
    if (r.kind === 'notStarted') {
      events.emit('task:rejected', { ...base(), requeue: true, cause: 'ackFailed', reason: r.detail });
      await this.io.transport.reject(p.delivery, { requeue: true }).catch(() => undefined);
      return;
    }
    if (r.kind === 'done') {
      const o = r.outcome;
      if (o.kind === 'success') {
        events.emit('task:succeeded', { ...base(), result: o.value, runtime });
        await this.store(p, successBody(req.id, o.value));
        await this.followUps(p, o.value);
      } else if (o.kind === 'retry') {
        events.emit('task:retried', { ...base(), exception: exceptionOf(o.error), countdown: o.countdownMs / 1000 });
        await this.io.transport.publish(p.delivery.queue, retryMessage(req, o.countdownMs), { timeoutMs: internalPublishMs(this.io.config) });
        await this.store(p, errorBody(req.id, 'RETRY', o.error));
      } else {
        events.emit('task:failed', { ...base(), exception: exceptionOf(o.error), runtime, cause: 'raised' });
        await this.store(p, errorBody(req.id, 'FAILURE', o.error));
        await this.errbacks(p);
      }
    } else if (r.kind === 'terminated') {
      // Celery's `_announce_revoked('terminated', …)`: event, REVOKED in the backend, then the ack.
      events.emit('task:revoked', { ...base(), terminated: true, signum: r.signal, expired: false, expires: null });
      await this.store(p, errorBody(req.id, 'REVOKED', encodeError(new TaskRevokedError('terminated', { taskId: req.id, signal: r.signal }))));
    } else if (r.kind === 'timeLimit') {
      const error = encodeError(new TimeLimitExceeded(r.seconds, { taskId: req.id }));
      events.emit('task:failed', { ...base(), exception: exceptionOf(error), runtime, cause: 'timeLimit', timeLimit: r.seconds, ...(r.detail !== undefined ? { detail: r.detail } : {}) });
      await this.store(p, errorBody(req.id, 'FAILURE', error));
      await this.errbacks(p);
    } else {
      if (!p.acked) {
        events.emit('task:rejected', { ...base(), requeue: true, cause: 'workerLost', reason: r.detail });
        await this.io.transport.reject(p.delivery, { requeue: true });
        p.acked = true;
        return;
      }
      const error = encodeError(new WorkerLostError(r.detail, { taskId: req.id }));
      events.emit('task:failed', { ...base(), exception: exceptionOf(error), runtime, cause: 'workerLost', detail: r.detail });
      await this.store(p, errorBody(req.id, 'FAILURE', error));
      await this.errbacks(p);
    }
    await this.ack(p);
  }

  /** Sends follow-ups of `parent`: task signatures, and the chord / group steps a chain may embed. */
  private stepIo(parent: TaskRequest): StepIo {
    return { backend: this.io.backend, replyTo: parent.replyTo, send: (sig, args, how) => this.publishFrom(parent, sig, args, how) };
  }

  private async publishFrom(parent: TaskRequest, sig: Signature, args: unknown[], how: StepSend): Promise<void> {
    // A task this worker knows is routed as the app would route it (its queue and priority), unless the signature says.
    const def = this.io.registry().getTask(sig.task)?.options;
    const defaults = def ? { queue: def.queue ?? undefined, priority: def.priority, ignoreResult: def.ignoreResult } : {};
    const { queue, message } = signatureMessage(sig, args, how, parent, this.io.config.defaultQueue, defaults);
    await this.io.transport.declareQueue(queue);
    await this.io.transport.publish(queue, message, { timeoutMs: internalPublishMs(this.io.config) });
  }

  /** Callbacks (link) and the next chain step (a task, or a chord / group step), after a success. */
  private async followUps(p: Pending, value: unknown): Promise<void> {
    const { embed } = p.req;
    const io = this.stepIo(p.req);
    try {
      for (const cb of embed.callbacks ?? []) await sendStep(cb, [value], null, io);
      if (embed.chain && embed.chain.length) await sendStep(embed.chain[embed.chain.length - 1]!, [value], embed.chain.slice(0, -1), io);
    } catch (err) {
      this.error(`Sending callbacks of ${p.req.task}[${p.req.id}] failed: ${(err as Error).message}`, p.req.id);
    }
  }

  private async errbacks(p: Pending): Promise<void> {
    try {
      for (const eb of p.req.embed.errbacks ?? []) await sendStep(eb, [p.req.id], null, this.stepIo(p.req));
    } catch (err) {
      this.error(`Sending errbacks of ${p.req.task}[${p.req.id}] failed: ${(err as Error).message}`, p.req.id);
    }
  }
}

/** A member of a group records its group in the result meta (Celery's `group_id`). */
function withGroup(req: TaskRequest, body: ResultBody): ResultBody {
  return req.group ? { ...body, group_id: req.group } : body;
}
