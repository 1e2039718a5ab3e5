// One error model for asynx: a base class with a stable code, an exit code, a cause and typed facts.
//
// Rules (checked by test/unit/errors-model.test.ts): nothing in src/ throws a plain `new Error(...)`;
// exit codes come from `ExitCode`, never a number literal; each dotted code is constructed at exactly
// one place (a class here, or one factory function), so one code always means one fault and one
// message template. Wrap a foreign error with `toAsynxError()` rather than rethrowing it raw.

/** CLI exit codes (BSD sysexits where one fits). */
export const ExitCode = {
  ok: 0,
  failure: 1,
  usage: 64,
  dataErr: 65,
  unavailable: 69,
  software: 70,
  /** A file the command must create exists or cannot be created (a live pidfile, an unwritable log). */
  cantCreate: 73,
} as const;

/** One of the exit codes above. */
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** Facts an error may carry, for logs and for callers that branch on them. */
export interface ErrorFacts {
  taskId?: string;
  task?: string;
  node?: string;
  pid?: number;
  signal?: string;
  timedOut?: boolean;
  path?: string;
  option?: string;
  value?: unknown;
  [key: string]: unknown;
}

/** What an {@link AsynxError} carries besides its code and message. */
export interface AsynxErrorOptions {
  /** Exit code the CLI uses. @defaultValue `ExitCode.failure` (1) */
  exitCode?: ExitCodeValue;
  /** The error this one explains (a driver error, a failed import). */
  cause?: unknown;
  /** Typed facts for logs and for callers that branch. @defaultValue `{}` */
  facts?: ErrorFacts;
}

/** Base class of every error asynx throws on purpose. */
export class AsynxError extends Error {
  /** Stable dotted code, e.g. `asynx.broker.unavailable`. */
  readonly code: string;
  /** Exit code the CLI uses when this error ends a command. */
  readonly exitCode: ExitCodeValue;
  /** Facts about what failed. */
  readonly facts: ErrorFacts;

  constructor(code: string, message: string, opts: AsynxErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'AsynxError';
    this.code = code;
    this.exitCode = opts.exitCode ?? ExitCode.failure;
    this.facts = opts.facts ?? {};
  }
}

/** Bad input from a user: a flag, an option value, a config file. Exit code 64. */
export class UsageError extends AsynxError {
  constructor(code: string, message: string, facts: ErrorFacts = {}, cause?: unknown) {
    super(code, message, { exitCode: ExitCode.usage, facts, cause });
    this.name = 'UsageError';
  }
}

/** The broker or result backend cannot be reached in time. Exit code 69. */
export class BrokerUnavailableError extends AsynxError {
  constructor(message: string, opts: { cause?: unknown; facts?: ErrorFacts } = {}) {
    super('asynx.broker.unavailable', message, { exitCode: ExitCode.unavailable, ...opts });
    this.name = 'BrokerUnavailableError';
  }
}

/** A message that does not follow Celery protocol v2 (or is not JSON). */
export class ProtocolError extends AsynxError {
  constructor(code: string, message: string, facts: ErrorFacts = {}, cause?: unknown) {
    super(code, message, { exitCode: ExitCode.dataErr, facts, cause });
    this.name = 'ProtocolError';
  }
}

/** The worker received a task name it has not registered (Celery's NotRegistered). */
export class NotRegistered extends AsynxError {
  constructor(task: string, facts: ErrorFacts = {}) {
    super('asynx.task.notRegistered', `Task '${task}' is not registered in this worker's app: define it with app.task('${task}', ...) in the module given to -A`, { facts: { task, ...facts } });
    this.name = 'NotRegistered';
  }
}

/** Thrown by `ctx.retry()`: tells the worker to schedule the task again. */
export class Retry extends AsynxError {
  readonly countdownMs: number;
  readonly reason?: unknown;
  constructor(countdownMs: number, reason?: unknown, facts: ErrorFacts = {}) {
    super('asynx.task.retry', `Retry in ${(countdownMs / 1000).toFixed(3)}s${reason instanceof Error ? `: ${reason.message}` : ''}`, { facts });
    this.name = 'Retry';
    this.countdownMs = countdownMs;
    this.reason = reason;
  }
}

/** A task ran out of retries. */
export class MaxRetriesExceededError extends AsynxError {
  constructor(task: string, taskId: string, maxRetries: number) {
    super('asynx.task.maxRetries', `Can't retry ${task}[${taskId}]: max retries (${maxRetries}) exceeded`, { facts: { task, taskId } });
    this.name = 'MaxRetriesExceededError';
  }
}

/** The hard time limit killed the task's pool child. */
export class TimeLimitExceeded extends AsynxError {
  constructor(seconds: number, facts: ErrorFacts = {}) {
    super('asynx.task.timeLimit', `TimeLimitExceeded(${seconds})`, { facts: { timedOut: true, ...facts } });
    this.name = 'TimeLimitExceeded';
  }
}

/** The soft time limit fired: the task's AbortSignal was aborted and the task failed. */
export class SoftTimeLimitExceeded extends AsynxError {
  constructor(seconds: number, facts: ErrorFacts = {}) {
    super('asynx.task.softTimeLimit', `SoftTimeLimitExceeded(${seconds})`, { facts: { timedOut: true, ...facts } });
    this.name = 'SoftTimeLimitExceeded';
  }
}

/** The pool child running a task died (killed, crashed, out of memory). */
export class WorkerLostError extends AsynxError {
  constructor(detail: string, facts: ErrorFacts = {}) {
    super('asynx.worker.lost', `Worker exited prematurely: ${detail}`, { facts });
    this.name = 'WorkerLostError';
  }
}

/** `AsyncResult.get()` did not see a ready state in time. */
export class TimeoutError extends AsynxError {
  constructor(message: string, facts: ErrorFacts = {}) {
    super('asynx.result.timeout', message, { facts: { timedOut: true, ...facts } });
    this.name = 'TimeoutError';
  }
}

/** The task was revoked (or expired before it ran). */
export class TaskRevokedError extends AsynxError {
  constructor(message: string, facts: ErrorFacts = {}) {
    super('asynx.task.revoked', message, { facts });
    this.name = 'TaskRevokedError';
  }
}

/**
 * A chord's body did not run because a header member failed (Celery's `ChordError`): the message names the
 * member, `Dependency <task id> raised <exception repr>`. `get()` on the chord's result rejects with it.
 */
export class ChordError extends AsynxError {
  constructor(message: string, facts: ErrorFacts = {}) {
    super('asynx.chord.failed', message, { facts });
    this.name = 'ChordError';
  }
}

/**
 * A chord was sent with a result backend that cannot count its members (rpc:// or none). Refused at call
 * time, as Celery's `ensure_chords_allowed()` does, instead of hanging in a worker later.
 */
export class ChordsUnsupportedError extends AsynxError {
  constructor(backend: string, facts: ErrorFacts = {}) {
    super(
      'asynx.chord.unsupportedBackend',
      backend === 'none'
        ? 'Chords need a result backend, and none is configured: set resultBackend to sqlite://… or redis://… (ASYNX_RESULT_BACKEND)'
        : `The "${backend}" result backend does not support chords! Note that a group chained with a task is also upgraded to be a chord, as this pattern requires synchronization. Result backends that support chords: sqlite://…, redis://… (set resultBackend / ASYNX_RESULT_BACKEND)`,
      { exitCode: ExitCode.usage, facts: { ...facts, value: backend } },
    );
    this.name = 'ChordsUnsupportedError';
  }
}

/**
 * A built-in canvas task (`celery.starmap`, `celery.chunks`) was sent arguments it cannot use: a missing or
 * malformed `task` signature, an `it` that is not a list of argument lists, a chunk size that is not a
 * positive integer. Named `TypeError`, as Python raises for such calls, so a Celery client re-raises it.
 */
export class CanvasArgumentError extends AsynxError {
  constructor(code: string, message: string, facts: ErrorFacts = {}) {
    super(code, message, { facts });
    this.name = 'TypeError';
  }
}

/**
 * An error re-created from a stored result: `name` is the remote exception type
 * (Python's `exc_type`), `remoteTraceback` the worker's traceback.
 */
export class RemoteTaskError extends Error {
  readonly excType: string;
  readonly excModule: string;
  readonly remoteTraceback: string | null;
  readonly excArgs: unknown[];
  constructor(excType: string, message: string, excModule: string, remoteTraceback: string | null, excArgs: unknown[] = [message]) {
    super(message);
    this.name = excType;
    this.excType = excType;
    this.excModule = excModule;
    this.remoteTraceback = remoteTraceback;
    this.excArgs = excArgs;
  }
}

/** True for errors thrown by asynx on purpose. */
export function isAsynxError(err: unknown): err is AsynxError {
  return err instanceof AsynxError;
}

/**
 * The message of any thrown value, without the `Error: ` prefix a stack or `String(err)` adds, so that a
 * message built from another never reads `Error: Error: ...`.
 */
export function errorMessage(err: unknown): string {
  let text: string;
  if (err instanceof Error) text = err.message;
  else if (typeof err === 'string') text = err;
  else {
    try {
      text = JSON.stringify(err) ?? String(err);
    } catch {
      text = String(err);
    }
  }
  return text.replace(/^(?:[A-Za-z]*Error: )+/, '');
}

/**
 * `err` itself when it is already an {@link AsynxError}; otherwise a new one with `code`, the message
 * `${message}: ${cause's message}` and `err` as its cause. Use it where a driver or Node error would
 * otherwise escape raw (`catch (err) { throw toAsynxError(err, 'asynx.sqlite.open', 'Cannot open ...') }`).
 * @param opts exit code and facts of the wrapper. @defaultValue `{ exitCode: ExitCode.failure }`
 */
export function toAsynxError(err: unknown, code: string, message: string, opts: Omit<AsynxErrorOptions, 'cause'> = {}): AsynxError {
  if (err instanceof AsynxError) return err;
  return new AsynxError(code, `${message}: ${errorMessage(err)}`, { ...opts, cause: err });
}
