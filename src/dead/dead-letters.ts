// Dead letters: the store contract (list, show, requeue, purge), its row type, and its errors.

import { AsynxError, ExitCode, UsageError } from '../errors.js';
import { reprOf } from '../protocol/codec.js';

/** One dead-lettered message, summarised. */
export interface DeadLetter {
  /**
   * Stable id to pass to `show` / `requeue`. SQLite: the `dead_letters` row id (`"12"`). AMQP: the
   * message's task id (`headers.id`), else its `message_id`, else `sha-` and a hash of its body. Redis:
   * the task id, else `sha-` and a hash of the list item.
   */
  id: string;
  /** The queue it was taken from (where `requeue` sends it back), or null when not recorded. */
  queue: string | null;
  /** Why the worker gave up on it (`asynx.task.notRegistered: ...`, `delivered 4 times ...`). */
  reason: string;
  /** How many times it was handed to a worker (Redis: until it was dead-lettered), or null where the broker does not count (AMQP). */
  deliveries: number | null;
  /** Task name (`headers.task`), or null for a message that is not a task message. */
  task: string | null;
  /** Task id (`headers.id`), or null. */
  taskId: string | null;
  /** A display form of the positional arguments (`headers.argsrepr`, else decoded from the body). */
  argsRepr: string | null;
  /** When it was dead-lettered (ISO-8601), or null when not recorded. */
  deadLetteredAt: string | null;
}

/** A dead letter with the message itself, as `show` returns it. */
export interface DeadLetterDetail extends DeadLetter {
  /** Keyword arguments' display form (`headers.kwargsrepr`, else decoded), or null. */
  kwargsRepr: string | null;
  /** AMQP-style properties, snake case (`content_type`, `priority`, ...). */
  properties: Record<string, unknown>;
  /** Celery headers as stored (`task`, `id`, `retries`, ...). */
  headers: Record<string, unknown>;
  /** The body text (Celery v2: `[args, kwargs, embed]` as JSON). */
  body: string;
}

/** Filter of {@link DeadLetters.list}. */
export interface ListDeadLettersOptions {
  /** Only messages taken from this queue. @defaultValue every queue */
  queue?: string;
  /** At most this many rows, oldest first. @defaultValue 100 */
  limit?: number;
}

/** Options of {@link DeadLetters.requeue}. */
export interface RequeueOptions {
  /**
   * Send to this queue instead of the recorded one. Needed for an AMQP dead letter that carries no
   * `x-asynx-queue` header (one dead-lettered by another tool). @defaultValue the recorded queue
   */
  queue?: string;
}

/** What {@link DeadLetters.requeue} did. */
export interface RequeueOutcome {
  /** The dead letters sent back, with the queue each went to. */
  requeued: Array<{ id: string; taskId: string | null; queue: string }>;
}

/**
 * The dead-letter store of one broker: what a worker could not run (unknown task, poison message,
 * invalid message), kept so that it can be seen, fixed and sent back.
 *
 * Every method may reject with BrokerUnavailableError (exit code 69).
 */
export interface DeadLetters {
  readonly kind: 'sqlite' | 'amqp' | 'redis';
  /** Dead letters, oldest first. On AMQP this reads the queue and gives every message back, in order. */
  list(opts?: ListDeadLettersOptions): Promise<DeadLetter[]>;
  /** One dead letter with its message; rejects with `asynx.dead.notFound` (exit 1) when there is none. */
  show(id: string): Promise<DeadLetterDetail>;
  /**
   * Puts a dead letter (or every one, with `'all'`) back on its queue with its delivery count reset, and
   * removes it from the store. Copies of one task message (same task id) are sent once and all removed. Rejects with `asynx.dead.notFound` when `id` matches nothing, and with
   * `asynx.dead.noQueue` (exit 64) when no queue is recorded and none is given.
   */
  requeue(id: string | 'all', opts?: RequeueOptions): Promise<RequeueOutcome>;
  /** Deletes dead letters (those from `queue`, or all); resolves to how many were deleted. */
  purge(opts?: { queue?: string }): Promise<number>;
  /** Releases the connection. Idempotent. */
  close(): Promise<void>;
}

/** No dead letter has this id. */
export function deadLetterNotFound(id: string, where: string): AsynxError {
  return new AsynxError('asynx.dead.notFound', `No dead letter with id '${id}' in ${where}: run asynx dead list to see the ids`, { exitCode: ExitCode.failure, facts: { value: id } });
}

/** A call on a store after close(). */
export function deadLettersClosed(where: string): AsynxError {
  return new AsynxError('asynx.dead.closed', `The dead-letter store of ${where} is closed: open it again with openDeadLetters()`, { exitCode: ExitCode.software, facts: { value: where } });
}

/** A dead letter whose original queue is not recorded, and no `queue` was given. */
export function deadLetterNoQueue(id: string): UsageError {
  return new UsageError('asynx.dead.noQueue', `Dead letter '${id}' does not record the queue it came from: give one with -Q <queue> (API: requeue(id, { queue }))`, { value: id });
}

/** A `limit` that is not a whole number ≥ 1. */
export function badLimit(value: unknown): UsageError {
  return new UsageError('asynx.dead.badLimit', `limit must be a whole number ≥ 1, got '${String(value)}'`, { option: 'limit', value });
}

/** The resolved `limit` of a list call. */
export function listLimit(opts: ListDeadLettersOptions | undefined): number {
  const n = opts?.limit ?? 100;
  if (!Number.isInteger(n) || n < 1) throw badLimit(n);
  return n;
}

const str = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null);

/** `[args, kwargs]` from a Celery v2 body, or null when it is not one. */
function decodeBody(body: string): [unknown, unknown] | null {
  try {
    const v = JSON.parse(body) as unknown;
    return Array.isArray(v) && v.length >= 2 ? [v[0], v[1]] : null;
  } catch {
    return null;
  }
}

/** The parts of a dead letter that every store reads from the message in the same way. */
export function describeMessage(headersIn: unknown, body: string): { task: string | null; taskId: string | null; argsRepr: string | null; kwargsRepr: string | null; headers: Record<string, unknown> } {
  const headers = (typeof headersIn === 'object' && headersIn !== null && !Array.isArray(headersIn) ? headersIn : {}) as Record<string, unknown>;
  let argsRepr = str(headers.argsrepr);
  let kwargsRepr = str(headers.kwargsrepr);
  if (argsRepr === null || kwargsRepr === null) {
    const decoded = decodeBody(body);
    if (decoded) {
      argsRepr ??= reprOf(decoded[0]);
      kwargsRepr ??= reprOf(decoded[1]);
    }
  }
  return { task: str(headers.task), taskId: str(headers.id), argsRepr, kwargsRepr, headers };
}
