// What a worker does after a task reaches a ready state: count it in its chord, fail the rest of its chain.

import { encodeError } from '../app/execute.js';
import { ChordError } from '../errors.js';
import { reprOf, type TaskRequest } from '../protocol/codec.js';
import { READY_STATES, type ResultBody, type Signature } from '../protocol/message.js';
import type { ChordFiring, ChordPart } from '../results/backend.js';
import { errorBody } from '../results/body.js';
import { sendStep, stepResults, storeOnEach, type StepIo } from './embedded.js';
import { normalizeSignature, signatureList } from './wire.js';

/** What the worker lends: its result backend and a way to send a signature (parent = the finished task). */
export type ReadyStateIo = StepIo;

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
 * (Celery's `mark_as_failure`); a remaining chord step fails its header members and its body (the chain's
 * result when it is the last step), a remaining group step its members. A chord member is counted; the member
 * that completes the chord sends the body.
 */
export async function onReadyState(req: TaskRequest, body: ResultBody, io: ReadyStateIo): Promise<void> {
  if (!READY_STATES.has(body.status)) return;
  if (PROPAGATE.has(body.status)) {
    await storeOnEach((req.embed.chain ?? []).flatMap(stepResults), (id) => ({ ...body, task_id: id }), { backend: io.backend, replyTo: req.replyTo });
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
      // The body may itself be a group (Celery's `group | group`); the rest of a chain rides in its options.chain.
      await sendStep(body, [firing.parts.map((p) => p.result)], null, io);
      return;
    } catch (err) {
      // Celery's `ChordError('Callback error: …')`: the chord's result says why, instead of staying PENDING.
      await failBody(body, bodyId, new ChordError(`Callback error: ${(err as Error).message}`, { taskId: bodyId ?? undefined }), req, io);
      return;
    }
  }
  await failBody(body, bodyId, memberFailed(culprit, bodyId), req, io);
}

/** The body's error when a member failed: Celery's `ChordError('Dependency <id> raised ValueError(…)')`. */
export function memberFailed(culprit: Pick<ChordPart, 'taskId' | 'groupIndex' | 'result'>, bodyId: string | null): ChordError {
  return new ChordError(`Dependency ${culprit.taskId} raised ${excRepr(culprit.result)}`, { taskId: bodyId ?? undefined, member: culprit.taskId, groupIndex: culprit.groupIndex });
}

/** True for a state that fails a chord and stops a chain (Celery's PROPAGATE_STATES). */
export function propagates(status: string): boolean {
  return PROPAGATE.has(status);
}

/** Stores the body's failure and sends its linkError callbacks (Celery's `chord_error_from_stack`). */
async function failBody(body: Signature, bodyId: string | null, err: ChordError, req: TaskRequest, io: ReadyStateIo): Promise<void> {
  // The body and the rest of the chain after it (a chord inside a chain): the chain's result rejects too.
  await storeOnEach(stepResults(body), (id) => errorBody(id, 'FAILURE', encodeError(err)), { backend: io.backend, replyTo: req.replyTo });
  // Celery's chord_error_from_stack: the body's link_error callbacks get the body's id (old-style errbacks).
  for (const eb of signatureList(body.options.link_error) ?? []) await sendStep(eb, [bodyId ?? req.id], null, io);
}
