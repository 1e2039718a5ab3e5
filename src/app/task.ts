// Task: a registered handler with typed delay() / applyAsync() / signature().

import type { SendOptions } from './call-options.js';
import type { Signature } from '../protocol/message.js';
import type { TaskDefinition } from './execute.js';
import type { AsyncResult } from './result.js';
import { TaskSignature, type ArgsSuffix, type CanvasApp, type SignatureOptions } from '../canvas/signature.js';
import { Chunks, starmapSignature } from '../canvas/starmap.js';

/** Options of one call, plus its arguments; durations as {@link SendOptions} says (bare numbers are seconds). */
export interface CallOptions<A extends unknown[] = unknown[]> extends SendOptions {
  /** Positional arguments. */
  args?: A;
  /** Keyword arguments; the handler gets them as one trailing object. */
  kwargs?: Record<string, unknown>;
}

/** What a Task needs from its app (kept narrow so tasks do not depend on the whole app): sending, and results for the canvas. */
export type TaskSender = CanvasApp;

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
   * A signature of this call, to send later or to compose (`chain`, `group`, `chord`, `link`): Celery's
   * `task.s(*args)`. In a chain, callback or chord the previous result is put before these args, so give the
   * trailing ones: `mul.s(10)` after `add.s(1, 2)` computes `mul(3, 10)`.
   */
  s(...args: ArgsSuffix<A>): TaskSignature<R> {
    return new TaskSignature<R>(this.sender, this.name, args);
  }

  /** An immutable signature (Celery's `task.si(*args)`): a chain or callback does not add the previous result. */
  si(...args: A): TaskSignature<R> {
    return new TaskSignature<R>(this.sender, this.name, args, {}, {}, true);
  }

  /** A signature with kwargs and call options (Celery's `task.signature(args, kwargs, **options)`). */
  sig(args: ArgsSuffix<A> = [] as unknown as ArgsSuffix<A>, kwargs: Record<string, unknown> = {}, options: SignatureOptions = {}, immutable = false): TaskSignature<R> {
    return new TaskSignature<R>(this.sender, this.name, args, kwargs, options, immutable);
  }

  /**
   * Celery's `task.starmap(it)`: ONE message of the built-in task `celery.starmap`, whose worker calls this
   * task once per argument list, in order, in that one task, and stores the list of values:
   * `(await add.starmap([[1, 2], [3, 4]]).applyAsync()).get()` gives `[3, 7]`. A failing call fails the whole
   * starmap with its error. Sent to this task's `queue` when it has one (Celery routes it by the inner
   * task). For one message per call, use `group(argLists.map((a) => task.s(...a)))`; for n calls per
   * message, {@link Task.chunks}.
   */
  starmap(argLists: ReadonlyArray<A>): TaskSignature<R[]> {
    return starmapSignature<R>(this.sender, this.name, argLists);
  }

  /**
   * Celery's `task.chunks(it, n)`: the argument lists split into chunks of `n` calls, each chunk one
   * `celery.starmap` message; `applyAsync()` sends them as a group, whose `get()` gives one list of values per
   * chunk (`add.chunks([[1, 1], [2, 2], [3, 3]], 2)` → `[[2, 4], [6]]`). `group()` gives that group;
   * `signature()` the `celery.chunks` signature, for a worker to split and send.
   */
  chunks(argLists: ReadonlyArray<A>, n: number): Chunks<R> {
    return new Chunks<R>(this.sender, this.name, argLists, n);
  }

  /**
   * A signature of this task, for `link` / `linkError` / chains. `immutable` signatures do not get
   * the parent's result prepended to their args.
   */
  signature(args: unknown[] = [], kwargs: Record<string, unknown> = {}, options: Record<string, unknown> = {}, immutable = false): Signature {
    return { task: this.name, args, kwargs, options, subtask_type: null, immutable };
  }
}
