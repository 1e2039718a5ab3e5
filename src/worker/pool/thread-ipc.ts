// Pool ↔ worker-thread protocol: the prefork messages (ipc.ts) where they fit; `done` reports the thread's own memory.

import type { Outcome } from '../../app/execute.js';
import type { ChildMessage } from './ipc.js';

/** `workerData` of a pool thread. */
export interface ThreadData {
  /** URL of the app module the thread imports. */
  appUrl: string;
  /** Pool slot (1-based), as ASYNX_POOL_INDEX. */
  index: number;
  /** Measure the thread's memory after each task (only when --max-memory-per-child needs it). */
  measureMemory: boolean;
}

/**
 * Thread → pool: the child handshake (`ready` / `initFailed`) and `state` of ipc.ts; `done` carries the
 * thread's V8 heap plus external (Buffer) bytes instead of an RSS, which threads share with the whole process.
 */
export type ThreadMessage = Exclude<ChildMessage, { type: 'done' }> | { type: 'done'; seq: number; outcome: Outcome; memory: number };
