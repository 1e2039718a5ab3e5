// Parent ↔ pool-child protocol: typed discriminated unions with a ready/initFailed handshake.

import type { ExecInput, Outcome } from '../../app/execute.js';

/** One task attempt handed to a child: what the attempt needs, plus a sequence number for the replies. */
export interface Job extends ExecInput {
  seq: number;
}

/** Parent → child. */
export type ParentMessage =
  | { type: 'run'; job: Job }
  /** Finish nothing more and exit (retire after max tasks / memory, or pool shutdown). */
  | { type: 'exit' }
  /** Remote control terminates the running task: die of `signal` (one the child otherwise ignores). */
  | { type: 'terminate'; signal: NodeJS.Signals };

/** Child → parent. */
export type ChildMessage =
  | { type: 'ready'; pid: number; tasks: string[] }
  | { type: 'initFailed'; error: string }
  | { type: 'state'; seq: number; state: string; meta: unknown }
  | { type: 'done'; seq: number; outcome: Outcome; rss: number };

/** Narrowing guard for messages from a child (unknown shapes are ignored). */
export function isChildMessage(m: unknown): m is ChildMessage {
  return typeof m === 'object' && m !== null && typeof (m as { type?: unknown }).type === 'string';
}
