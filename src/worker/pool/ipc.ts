// Parent ↔ pool-child protocol: typed discriminated unions with a ready/initFailed handshake.

import type { ExecInput, Outcome } from '../../app/execute.js';

/** One task attempt handed to a child: what the attempt needs, plus a sequence number for the replies. */
export interface Job extends ExecInput {
  seq: number;
  /**
   * The message body text as received (`[args, kwargs, embed]` JSON), already validated by the main process.
   * A prefork child gets this text instead of `args` and `kwargs` and parses it once (see {@link toWire}).
   */
  body?: string;
}

/** A job as it crosses to a prefork child: the body text in place of `args` and `kwargs`. */
export type WireJob = Omit<Job, 'args' | 'kwargs' | 'body'> & { body: string };

/**
 * What goes to a child for `job`: with a body text, the job without `args`/`kwargs` (the IPC channel then
 * copies one string instead of encoding the decoded arguments again); without, the job as it is.
 */
export function toWire(job: Job): Job | WireJob {
  if (job.body === undefined) return job;
  const { args: _args, kwargs: _kwargs, ...rest } = job;
  return rest as WireJob;
}

/** The job a child runs from what it received: `args` and `kwargs` parsed from the body text when it has one. */
export function fromWire(job: Job | WireJob): Job {
  if (job.body === undefined) return job as Job;
  const { body, ...rest } = job;
  const parsed = JSON.parse(body) as [unknown[], Record<string, unknown>];
  return { ...rest, args: parsed[0], kwargs: parsed[1] };
}

/** Parent → child. */
export type ParentMessage =
  | { type: 'run'; job: Job | WireJob }
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
