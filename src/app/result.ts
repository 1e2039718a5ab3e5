// AsyncResult: follow a task by id (state, get with timeout, ready, forget).

import { ChordError, TaskRevokedError, UsageError } from '../errors.js';
import { decodeException } from '../protocol/codec.js';
import { READY_STATES, type ResultBody, type TaskState } from '../protocol/message.js';
import type { ResultBackend } from '../results/backend.js';
import { durationMs, type Duration } from '../util/duration.js';

/** Options of {@link AsyncResult.get}. */
export interface GetOptions {
  /** How long to wait for a ready state: seconds (`0.5`, as in Celery) or `'250ms'`, `'2m'`. @defaultValue 60 (seconds) */
  timeout?: Duration;
  /** Reject with the task's error when it failed. @defaultValue true */
  propagate?: boolean;
  /** Called on each new state seen while waiting (e.g. PROGRESS updates). */
  onState?: (state: string, info: unknown) => void;
}

/** A handle on a task's result. */
export class AsyncResult<R = unknown> {
  constructor(
    /** Task id. */
    readonly id: string,
    private readonly backend: () => Promise<ResultBackend>,
  ) {}

  private async body(): Promise<ResultBody | null> {
    return (await this.backend()).get(this.id);
  }

  /** Current state: PENDING when the backend knows nothing about the task, or a custom state. */
  async state(): Promise<TaskState | string> {
    return (await this.body())?.status ?? 'PENDING';
  }

  /** The stored result, error dict or custom-state metadata. */
  async info(): Promise<unknown> {
    return (await this.body())?.result ?? null;
  }

  /** True once the task is SUCCESS, FAILURE or REVOKED. */
  async ready(): Promise<boolean> {
    return READY_STATES.has(await this.state());
  }

  async successful(): Promise<boolean> {
    return (await this.state()) === 'SUCCESS';
  }

  async failed(): Promise<boolean> {
    return (await this.state()) === 'FAILURE';
  }

  /**
   * Waits for the result. Resolves to the return value; rejects with the task's error re-created
   * (its `name` is the remote type, `remoteTraceback` the worker's traceback), TaskRevokedError,
   * or TimeoutError after `timeout` (seconds, like Celery's `get(timeout=…)`).
   */
  async get(opts: GetOptions = {}): Promise<R> {
    let timeoutMs: number;
    try {
      timeoutMs = durationMs(opts.timeout ?? 60, 'timeout');
    } catch {
      throw new UsageError('asynx.result.badOption', `AsyncResult.get(): timeout must be a duration: a number of seconds (30) or a string with a unit ('250ms', '2m'), got ${typeof opts.timeout === 'string' ? `'${opts.timeout}'` : String(opts.timeout)}`, { taskId: this.id, option: 'timeout', value: opts.timeout });
    }
    const backend = await this.backend();
    const body = await backend.wait(this.id, timeoutMs, opts.onState ? (b) => opts.onState!(b.status, b.result) : undefined);
    return settle<R>(body, opts.propagate ?? true);
  }

  /** Removes the stored result. */
  async forget(): Promise<void> {
    await (await this.backend()).forget(this.id);
  }

  toString(): string {
    return this.id;
  }
}

/** Turns a ready result body into a value or a thrown error. */
export function settle<R>(body: ResultBody, propagate: boolean): R {
  if (body.status === 'SUCCESS' || !propagate) return body.result as R;
  if (body.status === 'REVOKED') throw new TaskRevokedError(`Task ${body.task_id} was revoked${body.result && typeof body.result === 'object' && 'exc_message' in body.result ? `: ${String((body.result as { exc_message: unknown[] }).exc_message?.[0] ?? '')}` : ''}`, { taskId: body.task_id });
  const err = decodeException(body.result, body.traceback);
  // A chord body that never ran: the typed error a caller branches on, as Celery re-raises ChordError.
  if (err.name === 'ChordError') throw new ChordError(err.message, { taskId: body.task_id });
  throw err;
}
