// Runs one task attempt: context, soft time limit, and the retry decision. Used by pool children and eager mode.

import { MaxRetriesExceededError, Retry, SoftTimeLimitExceeded } from '../errors.js';
import { encodeException, tracebackOf } from '../protocol/codec.js';
import type { EncodedError } from '../protocol/message.js';
import { runWithContext, type RetryOptions, type TaskContext } from './context.js';
import { backoffSeconds, badTaskOption, matchesError, type ResolvedTaskOptions } from './task-options.js';
import { durationMs } from '../util/duration.js';

/** A task's handler plus options, as registered in an app. */
export interface TaskDefinition {
  readonly name: string;
  readonly handler: (this: TaskContext, ...args: never[]) => unknown;
  readonly options: ResolvedTaskOptions;
}

/** What one attempt needs to know. */
export interface ExecInput {
  id: string;
  name: string;
  args: unknown[];
  kwargs: Record<string, unknown>;
  retries: number;
  rootId: string;
  parentId: string | null;
  hostname: string;
  /** Seconds; overrides the task's own soft limit (from the message's timelimit header). */
  softTimeLimit: number | null;
  /** A periodic run's due time (the `x-asynx-scheduled-at` header). @defaultValue null */
  scheduledAt?: string | null;
  /** The group this call is a member of (the `group` header). @defaultValue null */
  group?: string | null;
  /** Its index in that group (the `group_index` header). @defaultValue null */
  groupIndex?: number | null;
}

export type { EncodedError };

/** The outcome of one attempt. */
export type Outcome =
  | { kind: 'success'; value: unknown }
  | { kind: 'failure'; error: EncodedError }
  | { kind: 'retry'; countdownMs: number; error: EncodedError };

/** Callbacks from a running task to whoever runs it. */
export interface ExecHooks {
  updateState(state: string, meta: unknown): Promise<void>;
}

function retryCountdownMs(task: string, value: unknown): number {
  try {
    return durationMs(value, 'countdown');
  } catch {
    throw badTaskOption(task, 'countdown', value, "given to retry() must be a duration: a number of seconds (30) or a string with a unit ('250ms', '30s')");
  }
}

export function encodeError(err: unknown): EncodedError {
  return { ...encodeException(err), traceback: tracebackOf(err) };
}

/** The arguments a handler gets: args, then kwargs as one trailing object when there are any. */
export function handlerArgs(args: unknown[], kwargs: Record<string, unknown>): unknown[] {
  return Object.keys(kwargs).length ? [...args, kwargs] : args;
}

/** Runs one attempt of `def` and says what should happen next. Never throws. */
export async function executeTask(def: TaskDefinition, input: ExecInput, hooks: ExecHooks, abort: AbortController = new AbortController()): Promise<Outcome> {
  const opts = def.options;
  const ctx: TaskContext = {
    id: input.id,
    name: input.name,
    retries: input.retries,
    args: input.args,
    kwargs: input.kwargs,
    signal: abort.signal,
    rootId: input.rootId,
    parentId: input.parentId,
    hostname: input.hostname,
    scheduledAt: input.scheduledAt ?? null,
    group: input.group ?? null,
    groupIndex: input.groupIndex ?? null,
    retry(ro: RetryOptions = {}): never {
      if (ro.maxRetries !== undefined && ro.maxRetries !== null && (!Number.isInteger(ro.maxRetries) || ro.maxRetries < 0)) {
        throw badTaskOption(input.name, 'maxRetries', ro.maxRetries, 'given to retry() must be an integer ≥ 0');
      }
      // Checked before the retries decision, so a bad countdown fails the task whatever the count.
      const countdownMs = ro.countdown === undefined || ro.countdown === null ? null : retryCountdownMs(input.name, ro.countdown);
      const max = ro.maxRetries !== undefined ? ro.maxRetries : opts.maxRetries;
      if (max !== null && input.retries >= max) {
        if (ro.error !== undefined) throw ro.error;
        throw new MaxRetriesExceededError(input.name, input.id, max);
      }
      const ms = countdownMs ?? backoffSeconds(opts, input.retries) * 1000;
      throw new Retry(Math.round(ms), ro.error, { taskId: input.id, task: input.name });
    },
    updateState: (state, meta) => hooks.updateState(state, meta ?? null),
  };
  const soft = input.softTimeLimit ?? opts.softTimeLimit;
  let softTimer: NodeJS.Timeout | null = null;
  const softFired = new Promise<never>((_, reject) => {
    if (soft) {
      softTimer = setTimeout(() => {
        const err = new SoftTimeLimitExceeded(soft, { taskId: input.id, task: input.name });
        abort.abort(err);
        reject(err);
      }, soft * 1000);
    }
  });
  softFired.catch(() => undefined);
  try {
    const run = Promise.resolve().then(() => runWithContext(ctx, () => def.handler.apply(ctx, handlerArgs(input.args, input.kwargs) as never[])));
    const value = await (soft ? Promise.race([run, softFired]) : run);
    return { kind: 'success', value: value === undefined ? null : value };
  } catch (err) {
    if (err instanceof Retry) {
      return { kind: 'retry', countdownMs: err.countdownMs, error: encodeError(err.reason ?? err) };
    }
    if (opts.autoretryFor.length && matchesError(err, opts.autoretryFor)) {
      if (opts.maxRetries === null || input.retries < opts.maxRetries) {
        return { kind: 'retry', countdownMs: Math.round(backoffSeconds(opts, input.retries) * 1000), error: encodeError(err) };
      }
    }
    return { kind: 'failure', error: encodeError(err) };
  } finally {
    if (softTimer) clearTimeout(softTimer);
  }
}
