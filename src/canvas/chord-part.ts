// What a worker does after a task reaches a ready state: count it in its chord, fail the rest of its chain.

import { encodeError } from '../app/execute.js';
import { ChordError } from '../errors.js';
import { reprOf, type TaskRequest } from '../protocol/codec.js';
import { READY_STATES, type ResultBody, type Signature } from '../protocol/message.js';
import type { ChordFiring, ChordPart, ResultBackend } from '../results/backend.js';
import { errorBody } from '../results/body.js';
import { mergeArgs, normalizeSignature } from './wire.js';

/** What the worker lends: its result backend and a way to send a signature (parent = the finished task). */
export interface ReadyStateIo {
  backend: ResultBackend;
  publish(sig: Signature, args: unknown[]): Promise<void>;
}

/** Celery's PROPAGATE_STATES: a chain stops and a chord fails on these. */
const PROPAGATE = new Set(['FAILURE', 'REVOKED']);

/** Python's repr of a stored exception, as ChordError's message shows it: `ValueError('kaput')`. */
function excRepr(result: unknown): string {
  if (typeof result === 'object' && result !== null && typeof (result as { exc_type?: unknown }).exc_type === 'string') {
    const r = result as { exc_type: string; exc_message?: unknown };
    const args = Array.isArray(r.exc_message) ? r.exc_message : [r.exc_message];
    return `${r.exc_type}(${args.map((a) => reprOf(a)).join(', ')})`;
  }
  return reprOf(result);
}

/**
 * Called once a task's ready state (SUCCESS, FAILURE, REVOKED) is stored. A failed chain step stores the same
 * failure on every remaining step that has an id, so the chain's result (its last step) rejects with it
 * (Celery's `mark_as_failure`). A chord member is counted; the member that completes the chord sends the body.
 */
export async function onReadyState(req: TaskRequest, body: ResultBody, io: ReadyStateIo): Promise<void> {
  if (!READY_STATES.has(body.status)) return;
  if (PROPAGATE.has(body.status)) {
    for (const step of req.embed.chain ?? []) {
      const id = step.options.task_id;
      if (typeof id === 'string' && id) await io.backend.store({ taskId: id, replyTo: typeof step.options.reply_to === 'string' ? step.options.reply_to : req.replyTo, taskName: step.task }, { ...body, task_id: id });
    }
  }
  if (req.embed.chord && req.group && req.groupIndex !== null && io.backend.chords) {
    const part: ChordPart = { groupId: req.group, groupIndex: req.groupIndex, taskId: req.id, status: body.status, result: body.result, body: req.embed.chord };
    const firing = await io.backend.chords.partReturn(part);
    if (firing) {
      await fireChord(firing, req, io);
      await io.backend.chords.markSent(req.group);
    }
  }
}

/** Sends the body with the results in group order, or fails it with a ChordError naming the first failed member. */
async function fireChord(firing: ChordFiring, req: TaskRequest, io: ReadyStateIo): Promise<void> {
  const body = normalizeSignature(firing.body);
  if (!body) return;
  const culprit = firing.parts.find((p) => PROPAGATE.has(p.status));
  const bodyId = typeof body.options.task_id === 'string' ? body.options.task_id : null;
  if (!culprit) {
    try {
      await io.publish(body, mergeArgs(body, [firing.parts.map((p) => p.result)]));
      return;
    } catch (err) {
      // Celery's `ChordError('Callback error: …')`: the chord's result says why, instead of staying PENDING.
      await failBody(body, bodyId, new ChordError(`Callback error: ${(err as Error).message}`, { taskId: bodyId ?? undefined }), req, io);
      return;
    }
  }
  await failBody(body, bodyId, new ChordError(`Dependency ${culprit.taskId} raised ${excRepr(culprit.result)}`, { taskId: bodyId ?? undefined, member: culprit.taskId, groupIndex: culprit.groupIndex }), req, io);
}

/** Stores the body's failure and sends its linkError callbacks (Celery's `chord_error_from_stack`). */
async function failBody(body: Signature, bodyId: string | null, err: ChordError, req: TaskRequest, io: ReadyStateIo): Promise<void> {
  if (bodyId) {
    const replyTo = typeof body.options.reply_to === 'string' ? body.options.reply_to : req.replyTo;
    await io.backend.store({ taskId: bodyId, replyTo, taskName: body.task }, errorBody(bodyId, 'FAILURE', encodeError(err)));
  }
  // Celery's chord_error_from_stack: the body's link_error callbacks get the body's id (old-style errbacks).
  const raw = body.options.link_error;
  const errbacks = (Array.isArray(raw) ? raw : raw ? [raw] : []).map(normalizeSignature).filter((s): s is Signature => s !== null);
  for (const eb of errbacks) await io.publish(eb, mergeArgs(eb, [bodyId ?? req.id]));
}
