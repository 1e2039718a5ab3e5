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
  /** Saves a group's member ids (Celery's `celery-taskset-meta-<gid>`); absent where results are not stored. */
  saveGroup?(groupId: string, taskIds: string[]): Promise<void>;
  /** A saved group's member ids in group order, or null when none is saved under that id. */
  restoreGroup?(groupId: string): Promise<string[] | null>;
  /** Removes a saved group. */
  deleteGroup?(groupId: string): Promise<void>;
  /** The chord counters; absent on backends that cannot keep them (rpc://, none), where chords are refused. */
  readonly chords?: ChordStore;
}

/** What a chord header member reports when it reaches a ready state. */
export interface ChordPart {
  groupId: string;
  groupIndex: number;
  taskId: string;
  status: string;
  /** The value (SUCCESS) or the encoded exception (FAILURE, REVOKED). */
  result: unknown;
  /**
   * The chord body the member carries (its `embed.chord`). Stores that keep the body themselves (SQLite) ignore
   * it; the Redis store, in Celery's layout, keeps none and fires the body the completing member carries.
   */
  body?: Record<string, unknown>;
}

/** The body to send once, with every member's outcome in group_index order. */
export interface ChordFiring {
  body: Record<string, unknown>;
  parts: ChordPart[];
}

/**
 * Chord counters kept in the result backend: the chord row is written before the header is published, each
 * member is counted once by its group_index (a redelivered member changes nothing), and exactly one member
 * (the one that completes the count) is told to send the body.
 */
export interface ChordStore {
  /** Records a chord before its header is published (Celery's `apply_chord`). */
  create(groupId: string, size: number, body: Record<string, unknown>): Promise<void>;
  /**
   * Counts one member. Resolves to the firing when this call completed the chord, or when this same member
   * completed it before and the body was not yet marked sent (the member was redelivered after a crash).
   */
  partReturn(part: ChordPart): Promise<ChordFiring | null>;
  /** Marks the body sent, so a redelivered member does not send it again. */
  markSent(groupId: string): Promise<void>;
}
