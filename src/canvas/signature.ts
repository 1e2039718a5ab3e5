// TaskSignature: a task call to make later (`task.s()`, `task.si()`), on the wire Celery's signature dict.

import { randomUUID } from 'node:crypto';
import type { ResolvedConfig } from '../config.js';
import { checkCallOptions, type SendOptions } from '../app/call-options.js';
import { RATE_LIMIT_HEADER, resolveRateLimit } from '../app/rate-limit.js';
import type { AsyncResult } from '../app/result.js';
import type { Signature } from '../protocol/message.js';
import type { ResultBackend } from '../results/backend.js';
import { mergeArgs, wireOptions } from './wire.js';

/** What the canvas needs from the app (an {@link Asynx} is one). */
export interface CanvasApp {
  send<R>(name: string, args: unknown[], kwargs: Record<string, unknown>, opts: SendOptions): Promise<AsyncResult<R>>;
  AsyncResult<R = unknown>(id: string): AsyncResult<R>;
  backend(): Promise<ResultBackend>;
  config(): Promise<ResolvedConfig>;
  readonly cwd: string;
}

/**
 * The arguments `task.s()` may be given: any tail of the task's parameters, since a chain, a callback or a
 * chord puts the previous result(s) before them (`mul.s(10)` in a chain calls `mul(previous, 10)`).
 */
export type ArgsSuffix<A extends unknown[]> = number extends A['length'] ? A : A extends [] ? [] : A extends [unknown?, ...infer T] ? A | ArgsSuffix<T> : A;

/** Options a signature carries and `applyAsync()` may add: every call option except the chain plumbing. */
export type SignatureOptions = Omit<SendOptions, 'chain' | 'chord'>;

/** Options of {@link TaskSignature.applyAsync}: partial args (before the signature's own) and call options. */
export interface SignatureCallOptions extends SignatureOptions {
  /** Put before the signature's own args, unless it is immutable (Celery's partial arguments). */
  args?: unknown[];
  /** Merged over the signature's own kwargs. */
  kwargs?: Record<string, unknown>;
}

/**
 * A task call to make later: task name, args, kwargs and call options. `task.s(2)` makes one, `task.si(2)` an
 * immutable one (a chain or callback does not put the previous result before its args). It serialises to
 * exactly Celery's signature dict `{task, args, kwargs, options, subtask_type, immutable}` (options in Celery's
 * snake_case names), so it can be given wherever a {@link Signature} is expected (`link`, `linkError`).
 * Instances are immutable: {@link TaskSignature.set} and {@link TaskSignature.clone} return new ones.
 *
 * @typeParam R - the task's result type
 * @see celery/canvas.py `Signature`
 */
export class TaskSignature<R = unknown> implements Signature {
  /** Celery's options dict (snake_case), as on the wire. */
  readonly options: Record<string, unknown>;
  readonly subtask_type: string | null = null;

  constructor(
    /** @internal */ readonly app: CanvasApp,
    /** Registered task name. */
    readonly task: string,
    readonly args: unknown[] = [],
    readonly kwargs: Record<string, unknown> = {},
    /** The call options as given (durations with units), used when this signature is sent. */
    readonly callOptions: SendOptions = {},
    readonly immutable = false,
  ) {
    this.options = wireOptions(checkCallOptions(task, callOptions));
    // Not a Celery option: carried so that a worker sending this signature (a chain step, a chord body, a
    // callback) gives its message the same per-call rate limit as a direct call would.
    const rate = resolveRateLimit(`Task '${task}': signature option`, callOptions.rateLimit);
    if (rate) this.options[RATE_LIMIT_HEADER] = { rate: rate.text, global: rate.global };
  }

  /** A copy with more call options (`queue`, `countdown`, `priority`, `link`, `linkError`, `taskId`, …). Throws UsageError for a bad one. */
  set(options: SignatureOptions): TaskSignature<R> {
    return new TaskSignature<R>(this.app, this.task, this.args, this.kwargs, { ...this.callOptions, ...options }, this.immutable);
  }

  /** A copy with `partial` args put before its own (unless immutable) and kwargs merged. */
  clone(partial: unknown[] = [], kwargs: Record<string, unknown> = {}, options: SendOptions = {}): TaskSignature<R> {
    return new TaskSignature<R>(this.app, this.task, mergeArgs(this, partial), { ...this.kwargs, ...kwargs }, { ...this.callOptions, ...options }, this.immutable);
  }

  /** A copy that ignores the previous result in a chain or callback (Celery's `si()` / `immutable=True`). */
  asImmutable(): TaskSignature<R> {
    return new TaskSignature<R>(this.app, this.task, this.args, this.kwargs, this.callOptions, true);
  }

  /** The task id this signature will be sent with (assigned on first call, as Celery's `freeze()` does). */
  get id(): string | undefined {
    return this.callOptions.taskId;
  }

  /** A copy with a task id assigned (kept when it has one already). */
  freeze(): TaskSignature<R> {
    return this.callOptions.taskId ? this : this.set({ taskId: randomUUID() });
  }

  /** Adds a success callback (Celery's `link`): it gets this task's result before its own args. */
  link(callback: Signature): TaskSignature<R> {
    return this.set({ link: [...listOf(this.callOptions.link), callback] });
  }

  /** Adds a failure callback (Celery's `link_error`): it gets this task's id before its own args. */
  linkError(errback: Signature): TaskSignature<R> {
    return this.set({ linkError: [...listOf(this.callOptions.linkError), errback] });
  }

  /** Sends the task; partial args go before the signature's own (unless immutable), options win over its own. */
  applyAsync(opts: SignatureCallOptions = {}): Promise<AsyncResult<R>> {
    const { args, kwargs, ...rest } = opts;
    return this.app.send<R>(this.task, mergeArgs(this, args ?? []), { ...this.kwargs, ...kwargs }, { ...this.callOptions, ...rest });
  }

  /** Sends the task with partial args (Celery's `sig.delay(*args)`). */
  delay(...args: unknown[]): Promise<AsyncResult<R>> {
    return this.applyAsync({ args });
  }

  /** Celery's signature dict. */
  toJSON(): Signature {
    return { task: this.task, args: this.args, kwargs: this.kwargs, options: this.options, subtask_type: this.subtask_type, immutable: this.immutable };
  }

  toString(): string {
    return `${this.task}(${this.args.map((a) => JSON.stringify(a)).join(', ')})`;
  }
}

function listOf<T>(v: T | T[] | undefined): T[] {
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

/** True for a {@link TaskSignature}. */
export function isTaskSignature(v: unknown): v is TaskSignature {
  return v instanceof TaskSignature;
}
