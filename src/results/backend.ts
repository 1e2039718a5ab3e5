// ResultBackend: where task states and results live (SQLite table, rpc:// reply queues).

import type { ResultBody } from '../protocol/message.js';

/** Where to deliver a result: the task id plus the reply queue of the calling client, when known. */
export interface ResultTarget {
  taskId: string;
  replyTo?: string | null;
  taskName?: string;
}

/** The result store contract. */
export interface ResultBackend {
  readonly kind: string;
  /**
   * Queue name for `reply_to` in messages this client sends (rpc:// needs it;
   * stored backends return a stable per-client id for Celery compatibility).
   */
  readonly replyTo: string;
  /** Connects (idempotent). */
  connect(): Promise<void>;
  /** Stores (or sends) a state for a task. Ready states are final: a later non-ready store does not overwrite them. */
  store(target: ResultTarget, body: ResultBody): Promise<void>;
  /** Latest known state of a task, or null (PENDING). */
  get(taskId: string): Promise<ResultBody | null>;
  /** Waits until the task is in a ready state; rejects with TimeoutError after `timeoutMs`. */
  wait(taskId: string, timeoutMs: number, onState?: (body: ResultBody) => void): Promise<ResultBody>;
  /** Removes what is stored for a task. */
  forget(taskId: string): Promise<void>;
  /** Removes results older than their expiry; resolves to the count removed. */
  cleanup(): Promise<number>;
  close(): Promise<void>;
}
