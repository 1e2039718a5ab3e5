// Messages a worker sends after a task: Celery-style retries, link callbacks / errbacks, the next chain step.

import { DEDUPE_HEADER } from '../app/dedupe.js';
import { RATE_LIMIT_HEADER } from '../app/rate-limit.js';
import { buildTaskMessage, type TaskRequest } from '../protocol/codec.js';
import type { Signature, WireMessage } from '../protocol/message.js';
import { messageOptionsOf } from '../canvas/wire.js';

/** Celery's retry message: same id, retries + 1, eta = now + countdown, parent_id = the task's own id. */
export function retryMessage(req: TaskRequest, countdownMs: number): WireMessage {
  const { message } = buildTaskMessage(req.task, req.args, req.kwargs, {
    taskId: req.id,
    retries: req.retries + 1,
    countdown: countdownMs / 1000,
    expires: req.expires !== null ? new Date(req.expires) : undefined,
    rootId: req.rootId,
    parentId: req.id,
    replyTo: req.replyTo ?? undefined,
    priority: req.priority,
    timeLimit: req.timeLimit ?? undefined,
    softTimeLimit: req.softTimeLimit ?? undefined,
    ignoreResult: req.ignoreResult,
    group: req.group,
    groupIndex: req.groupIndex,
    shadow: req.shadow,
    link: req.embed.callbacks ?? undefined,
    linkError: req.embed.errbacks ?? undefined,
    chain: req.embed.chain ?? undefined,
    chord: req.embed.chord,
  });
  // The retry keeps the call's rate limit and dedupe key: its next attempt holds the key until it ends.
  for (const h of [RATE_LIMIT_HEADER, DEDUPE_HEADER]) if (req.headers[h] !== undefined) message.headers[h] = req.headers[h];
  return message;
}

/**
 * The message for a signature sent by `parent` (a callback, an errback or the next chain step):
 * its own task id and reply queue when the signature carries them, parent_id = parent, same root.
 */
export function signatureMessage(sig: Signature, args: unknown[], chain: Signature[] | null, parent: TaskRequest, defaultQueue: string): { queue: string; message: WireMessage } {
  const o = messageOptionsOf(sig.options);
  return buildTaskMessage(sig.task, args, sig.kwargs, {
    ...o,
    replyTo: o.replyTo ?? parent.replyTo ?? undefined,
    parentId: parent.id,
    rootId: parent.rootId,
    chain: chain ?? undefined,
    defaultQueue,
  });
}
