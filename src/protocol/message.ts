// Celery message protocol v2 types: task headers, properties, body and result bodies. No I/O here.

/** A Celery signature, as embedded in callbacks / errbacks / chain. */
export interface Signature {
  task: string;
  args: unknown[];
  kwargs: Record<string, unknown>;
  options: Record<string, unknown>;
  subtask_type: string | null;
  immutable: boolean;
}

/** The third element of a v2 body. */
export interface Embed {
  callbacks: Signature[] | null;
  errbacks: Signature[] | null;
  chain: Signature[] | null;
  chord: Record<string, unknown> | null;
}

/**
 * Celery protocol v2 task headers (Celery 5.2 writes all of them, `null` where unset). The optional ones are left out of a message when they hold Celery's default
 * (null, 0, false, `[null, null]`): a Celery 5.2 worker reads each of them with that default when absent
 * (`celery/worker/request.py`, `strategy.py`, `app/task.py` Context), and every asynx decoder does too.
 */
export interface TaskHeaders {
  lang: string;
  task: string;
  id: string;
  shadow?: string | null;
  eta?: string | null;
  expires?: string | null;
  group?: string | null;
  group_index?: number | null;
  retries?: number;
  timelimit?: [number | null, number | null];
  root_id: string;
  parent_id?: string | null;
  argsrepr: string;
  kwargsrepr: string;
  origin: string;
  ignore_result?: boolean;
  [extra: string]: unknown;
}

/** AMQP basic properties that a task message carries. */
export interface TaskProperties {
  content_type: string;
  content_encoding: string;
  delivery_mode: 1 | 2;
  priority: number;
  correlation_id: string;
  reply_to?: string;
  /** ms from publish to expiry, as a string (AMQP per-message TTL). */
  expiration?: string;
}

/**
 * A message as it travels on any transport: properties, headers and the body as
 * encoded text (so a body that is not JSON can still be carried to a dead-letter queue).
 */
export interface WireMessage {
  properties: TaskProperties;
  headers: TaskHeaders;
  body: string;
}

/** Decoded `[args, kwargs, embed]`. */
export type TaskBody = [unknown[], Record<string, unknown>, Embed];

/** States a task can be in. PENDING means "unknown to the backend". */
export type TaskState = 'PENDING' | 'RECEIVED' | 'STARTED' | 'RETRY' | 'SUCCESS' | 'FAILURE' | 'REVOKED';

/** States after which nothing more happens. */
export const READY_STATES: ReadonlySet<string> = new Set(['SUCCESS', 'FAILURE', 'REVOKED']);

/** A serialised exception, as Celery writes it in a result. */
export interface EncodedException {
  exc_type: string;
  exc_message: unknown[];
  exc_module: string;
}

/** An exception in Celery's form plus the traceback text: travels over IPC and into results. */
export interface EncodedError extends EncodedException {
  traceback: string | null;
}

/** A result body, as the rpc:// backend sends it and as the SQLite backend stores it. */
export interface ResultBody {
  task_id: string;
  /** A TaskState, or a custom state from `updateState` (e.g. `PROGRESS`). */
  status: string;
  result: unknown;
  traceback: string | null;
  children: unknown[];
  date_done?: string | null;
  name?: string | null;
  /** The group the task belongs to (Celery's result meta `group_id`), when it is a group member. */
  group_id?: string | null;
}

export const JSON_CONTENT_TYPE = 'application/json';

/** Header carrying the dedupe key of a message sent with `dedupe` / `dedupeKey` (the worker releases the key when the task ends). */
export const DEDUPE_HEADER = 'asynx_dedupe';
