// Call options as a caller writes them (durations, one link or many) → checked message options, or a UsageError.

import { UsageError } from '../errors.js';
import { parseCeleryTime, type MessageOptions } from '../protocol/codec.js';
import type { Signature } from '../protocol/message.js';
import { durationMs, type Duration } from '../util/duration.js';
import type { RateLimit } from './rate-limit.js';

/**
 * Options of one call (`applyAsync`, `sendTask`). Durations follow the asynx rule: a bare number is
 * seconds, as in Celery; a string may carry a unit (`'250ms'`, `'30s'`, `'5m'`, `'1h'`).
 */
export interface SendOptions {
  /** Task id. @defaultValue a random UUID */
  taskId?: string;
  /** Delay before the task may run. */
  countdown?: Duration;
  /** Earliest run time (a Date or an ISO-8601 string). */
  eta?: Date | string;
  /** A delay from now (Duration), or an absolute time (Date or ISO-8601 string), after which the task is revoked instead of run. */
  expires?: Duration | Date;
  /** 0..255, higher runs first (on Redis, as in Celery, lower runs first: 0 is the highest). @defaultValue the task's priority, else 0 */
  priority?: number;
  /** @defaultValue the task's queue, else the app's defaultQueue */
  queue?: string;
  /** Retries already done (normally 0). */
  retries?: number;
  /** Hard time limit for this call. */
  timeLimit?: Duration;
  /** Soft time limit for this call. */
  softTimeLimit?: Duration;
  ignoreResult?: boolean;
  parentId?: string | null;
  rootId?: string | null;
  group?: string | null;
  groupIndex?: number | null;
  shadow?: string | null;
  /** Signatures to call with the result on success (Celery `link`): one, or a list. */
  link?: Signature | Signature[];
  /** Signatures to call on failure (Celery `link_error`): one, or a list. */
  linkError?: Signature | Signature[];
  /** Remaining chain steps, in Celery order (the next step is the last element). */
  chain?: Signature[];
  /** @internal The chord body a header member carries (`embed.chord`); set by `chord()`, not by callers. */
  chord?: Record<string, unknown>;
  /**
   * A rate limit for this call, instead of the task's (carried in the `asynx_rate_limit` header; messages
   * of one task with the same per-call rate share one bucket). @see {@link RateLimit}
   */
  rateLimit?: RateLimit;
  /**
   * SQLite and Redis brokers: send nothing when a task with this `taskId` is already waiting or running, and
   * return that task's result instead. Refused on RabbitMQ (at-least-once: make the task idempotent on its id).
   * @see README "Deduplication"
   */
  dedupe?: boolean;
  /** Like `dedupe`, on a key of your own instead of the task id (the new task still gets its own id). */
  dedupeKey?: string;
}

const ISO_LIKE = /^\d{4}-\d\d-\d\d([T ]\d\d:\d\d(:\d\d(\.\d+)?)?)?(Z|[+-]\d\d:?\d\d)?$/i;

/** The error for a bad option given at a call: names the task, the option and the value. */
export function badCallOption(task: string, option: string, value: unknown, expected: string): UsageError {
  const shown = typeof value === 'string' ? `'${value}'` : typeof value === 'object' && value !== null ? JSON.stringify(value) : String(value);
  return new UsageError('asynx.call.badOption', `Task '${task}': call option ${option} ${expected}, got ${shown}`, { task, option, value });
}

function seconds(task: string, option: string, value: Duration): number {
  try {
    return durationMs(value, option) / 1000;
  } catch {
    throw badCallOption(task, option, value, "must be a duration: a number of seconds (30) or a string with a unit ('250ms', '30s', '5m')");
  }
}

function positiveSeconds(task: string, option: string, value: Duration | undefined): number | undefined {
  if (value === undefined || value === null) return undefined;
  const s = seconds(task, option, value);
  if (!(s > 0)) throw badCallOption(task, option, value, 'must be a positive duration');
  return s;
}

function time(task: string, option: string, value: Date | string): Date {
  let ms = NaN;
  if (value instanceof Date) ms = value.getTime();
  else if (typeof value === 'string' && ISO_LIKE.test(value.trim())) {
    try {
      ms = parseCeleryTime(value, option);
    } catch {
      // reported below, as a call option
    }
  }
  if (Number.isNaN(ms)) throw badCallOption(task, option, value, 'must be a Date or an ISO-8601 time (2026-01-31T12:00:00Z)');
  return new Date(ms);
}

function signatures(task: string, option: string, value: Signature | Signature[] | undefined): Signature[] | undefined {
  if (value === undefined || value === null) return undefined;
  const list = Array.isArray(value) ? value : [value];
  for (const s of list) {
    if (typeof s !== 'object' || s === null || typeof s.task !== 'string' || s.task === '') throw badCallOption(task, option, value, 'must be a signature (app.signature(name) or task.signature()) or a list of them');
    // Checked now, not when the worker sends it: by then it would be a message's fault, not the caller's.
    const own = (s as { callOptions?: SendOptions }).callOptions;
    if (own && (own.dedupe || own.dedupeKey !== undefined)) throw dedupeNotCarried(task, option, s.task);
    const p = s.options?.priority;
    if (p !== undefined && p !== null && (typeof p !== 'number' || !Number.isInteger(p) || p < 0 || p > 255)) throw badCallOption(task, `${option}.options.priority`, p, 'must be an integer 0..255');
  }
  return list.map((s) => ({ task: s.task, args: s.args ?? [], kwargs: s.kwargs ?? {}, options: s.options ?? {}, subtask_type: s.subtask_type ?? null, immutable: s.immutable ?? false }));
}

/**
 * dedupe / dedupeKey hold a key in the broker at the publish made by the caller; a signature a worker sends
 * later (a chain step, a chord body, a callback) cannot take it there, so it is refused rather than dropped.
 */
export function dedupeNotCarried(task: string, where: string, sigTask: string): UsageError {
  return new UsageError('asynx.call.dedupeNotCarried', `Task '${task}': ${where} signature ${sigTask} has dedupe / dedupeKey, which only the call that publishes it can apply; a worker sends this one later. Dedupe the first call (the chain's first step, the chord's header) or make the task idempotent on its id`, { task, option: where, value: sigTask });
}

function optionalString(task: string, option: string, value: unknown): void {
  if (value !== undefined && value !== null && (typeof value !== 'string' || value === '')) throw badCallOption(task, option, value, 'must be a non-empty string');
}

/**
 * Checks the options a caller gave for one call of `task` and converts them to message options
 * (durations → seconds, one link → a list). Throws UsageError `asynx.call.badOption` naming the option.
 */
export function checkCallOptions(task: string, o: SendOptions): MessageOptions {
  if (o.priority !== undefined && (!Number.isInteger(o.priority) || o.priority < 0 || o.priority > 255)) throw badCallOption(task, 'priority', o.priority, 'must be an integer 0..255');
  if (o.retries !== undefined && (!Number.isInteger(o.retries) || o.retries < 0)) throw badCallOption(task, 'retries', o.retries, 'must be an integer ≥ 0');
  if (o.groupIndex !== undefined && o.groupIndex !== null && (!Number.isInteger(o.groupIndex) || o.groupIndex < 0)) throw badCallOption(task, 'groupIndex', o.groupIndex, 'must be an integer ≥ 0');
  for (const k of ['taskId', 'queue', 'parentId', 'rootId', 'group', 'shadow'] as const) optionalString(task, k, o[k]);
  if (o.chain !== undefined && !Array.isArray(o.chain)) throw badCallOption(task, 'chain', o.chain, 'must be a list of signatures');
  const out: MessageOptions = {
    taskId: o.taskId,
    priority: o.priority,
    queue: o.queue,
    retries: o.retries,
    ignoreResult: o.ignoreResult,
    parentId: o.parentId,
    rootId: o.rootId,
    group: o.group,
    groupIndex: o.groupIndex,
    shadow: o.shadow,
    link: signatures(task, 'link', o.link),
    linkError: signatures(task, 'linkError', o.linkError),
    chain: signatures(task, 'chain', o.chain),
    chord: o.chord,
    timeLimit: positiveSeconds(task, 'timeLimit', o.timeLimit),
    softTimeLimit: positiveSeconds(task, 'softTimeLimit', o.softTimeLimit),
  };
  if (o.countdown !== undefined && o.countdown !== null) out.countdown = seconds(task, 'countdown', o.countdown);
  if (o.eta !== undefined && o.eta !== null) out.eta = time(task, 'eta', o.eta);
  if (o.expires !== undefined && o.expires !== null) {
    const e = o.expires;
    // A string is an ISO time when it looks like one, else a duration ('30s', '60').
    out.expires = e instanceof Date || (typeof e === 'string' && ISO_LIKE.test(e.trim())) ? time(task, 'expires', e as Date | string) : seconds(task, 'expires', e as Duration);
  }
  return out;
}
