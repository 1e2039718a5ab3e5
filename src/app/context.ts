// TaskContext: what a running task can see and do (id, retries, AbortSignal, retry(), updateState()).

import { AsyncLocalStorage } from 'node:async_hooks';
import { AsynxError } from '../errors.js';
import type { Duration } from '../util/duration.js';

/** Options of `ctx.retry()`. */
export interface RetryOptions {
  /** Delay before the next attempt (seconds, or `'500ms'`, `'2m'`). @defaultValue the task's backoff, else its `defaultRetryDelay` */
  countdown?: Duration;
  /** The error that caused the retry; it becomes the FAILURE result once retries run out. */
  error?: unknown;
  /** Overrides the task's `maxRetries` for this decision. */
  maxRetries?: number;
}

/** Given to a task handler as `this`, and returned by {@link currentTask} inside it. */
export interface TaskContext {
  /** Task id. */
  readonly id: string;
  /** Registered task name. */
  readonly name: string;
  /** Retries done before this attempt (0 on the first). */
  readonly retries: number;
  readonly args: readonly unknown[];
  readonly kwargs: Readonly<Record<string, unknown>>;
  /** Aborted when the soft time limit fires or the worker shuts down cold: stop work when it fires. */
  readonly signal: AbortSignal;
  readonly rootId: string;
  readonly parentId: string | null;
  /** Node name of the worker running the task (`eager` in eager mode). */
  readonly hostname: string;
  /** A periodic run's due time (ISO-8601, from the `x-asynx-scheduled-at` header), else null. */
  readonly scheduledAt: string | null;
  /**
   * The id of the group (or chord header) this call is a member of, from the message's `group` header
   * (Celery's `self.request.group`); null when it was not sent as part of a group.
   */
  readonly group: string | null;
  /** This call's position in its group (the `group_index` header, Celery's `self.request.group_index`), else null. */
  readonly groupIndex: number | null;
  /**
   * Schedules another attempt and ends this one: `throw ctx.retry({ countdown: 5, error })`.
   * Once retries run out it throws `error` (or MaxRetriesExceededError) instead, so the task fails.
   */
  retry(opts?: RetryOptions): never;
  /** Stores a custom state (e.g. `PROGRESS`) with metadata, visible to `AsyncResult.state()`/`info()`. */
  updateState(state: string, meta?: unknown): Promise<void>;
}

const storage = new AsyncLocalStorage<TaskContext>();

/** Runs `fn` with `ctx` as the current task context. */
export function runWithContext<T>(ctx: TaskContext, fn: () => T): T {
  return storage.run(ctx, fn);
}

/**
 * The context of the task running now (for arrow-function handlers). Outside a task it throws
 * AsynxError `asynx.task.noContext`.
 */
export function currentTask(): TaskContext {
  const ctx = storage.getStore();
  if (!ctx) throw new AsynxError('asynx.task.noContext', 'currentTask() was called outside a running task: call it from inside a task handler (or use `this` in a function handler)');
  return ctx;
}
