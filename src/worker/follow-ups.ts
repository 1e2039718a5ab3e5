// Messages a worker sends after a task: Celery-style retries, link callbacks / errbacks, the next chain step.

import { DEDUPE_HEADER } from '../app/dedupe.js';
import { RATE_LIMIT_HEADER } from '../app/rate-limit.js';
import { buildTaskMessage, type TaskRequest } from '../protocol/codec.js';
import type { Signature, WireMessage } from '../protocol/message.js';
import type { StepSend } from '../canvas/embedded.js';
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

/** A registered task's own routing, used when a signature sent by the worker does not name its own (Celery's task options). */
export interface TaskDefaults {
  queue?: string;
  priority?: number;
  ignoreResult?: boolean;
}

/**
 * The message for a signature sent by `parent` (a callback, an errback, the next chain step, a chord body or
 * header member): every option in the signature's `options` dict (queue, priority, countdown / eta, expires,
 * time limits, link / link_error, …), else the task's own `defaults`; its own task id and reply queue when it
 * carries them; parent_id = parent, same root. `how` adds the rest of the chain and group / chord membership
 * (`how.chain` null: the signature's own `options.chain`, as a chord body carries it). A per-call rate limit
 * set on the signature (`asynx_rate_limit` option) becomes the message's rate-limit header.
 */
export function signatureMessage(sig: Signature, args: unknown[], how: StepSend, parent: TaskRequest, defaultQueue: string, defaults: TaskDefaults = {}): { queue: string; message: WireMessage } {
  const o = messageOptionsOf(sig.options);
  const built = buildTaskMessage(sig.task, args, sig.kwargs, {
    ...o,
    queue: o.queue ?? defaults.queue,
    priority: o.priority ?? (defaults.priority || undefined),
    ignoreResult: o.ignoreResult ?? (defaults.ignoreResult || undefined),
    replyTo: o.replyTo ?? parent.replyTo ?? undefined,
    parentId: parent.id,
    rootId: parent.rootId,
    chain: how.chain ?? o.chain,
    ...(how.group !== undefined ? { group: how.group, groupIndex: how.groupIndex ?? null } : {}),
    ...(how.chord !== undefined ? { chord: how.chord } : {}),
    defaultQueue,
  });
  const rate = sig.options[RATE_LIMIT_HEADER];
  if (typeof rate === 'object' && rate !== null && typeof (rate as { rate?: unknown }).rate === 'string') built.message.headers[RATE_LIMIT_HEADER] = rate;
  return built;
}
