// Task: a registered handler with typed delay() / applyAsync() / signature().

import type { SendOptions } from './call-options.js';
import type { Signature } from '../protocol/message.js';
import type { TaskDefinition } from './execute.js';
import type { AsyncResult } from './result.js';

/** Options of one call, plus its arguments; durations as {@link SendOptions} says (bare numbers are seconds). */
export interface CallOptions<A extends unknown[] = unknown[]> extends SendOptions {
  /** Positional arguments. */
  args?: A;
  /** Keyword arguments; the handler gets them as one trailing object. */
  kwargs?: Record<string, unknown>;
}

/** What a Task needs from its app (kept narrow so tasks do not depend on the whole app). */
export interface TaskSender {
  send<R>(name: string, args: unknown[], kwargs: Record<string, unknown>, opts: SendOptions): Promise<AsyncResult<R>>;
}

/** A task registered with `app.task()`. Argument and result types come from the handler. */
export class Task<A extends unknown[] = unknown[], R = unknown> {
  constructor(
    private readonly sender: TaskSender,
    /** The registered definition (handler and resolved options). */
    readonly definition: TaskDefinition,
  ) {}

  /** Registered name. */
  get name(): string {
    return this.definition.name;
  }

  /** Sends the task with positional arguments; resolves once the broker holds the message. */
  delay(...args: A): Promise<AsyncResult<R>> {
    return this.sender.send<R>(this.name, args, {}, {});
  }

  /** Sends the task with options (countdown, eta, expires, priority, queue, taskId, retries, …). */
  applyAsync(opts: CallOptions<A> = {}): Promise<AsyncResult<R>> {
    const { args, kwargs, ...rest } = opts;
    return this.sender.send<R>(this.name, args ?? [], kwargs ?? {}, rest);
  }

  /**
   * A signature of this task, for `link` / `linkError` / chains. `immutable` signatures do not get
   * the parent's result prepended to their args.
   */
  signature(args: unknown[] = [], kwargs: Record<string, unknown> = {}, options: Record<string, unknown> = {}, immutable = false): Signature {
    return { task: this.name, args, kwargs, options, subtask_type: null, immutable };
  }
}
