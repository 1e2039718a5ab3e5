// The worker lifecycle as an explicit transition table; every state change goes through one method.

import { AsynxError, ExitCode } from '../errors.js';
import type { WorkerEvents, WorkerState } from './events.js';

/**
 * Legal transitions. `draining → running` is the HUP pool restart resuming; `starting → draining` is a
 * stop that arrived while the worker was starting. `stopped` and `failed` are final.
 */
const TRANSITIONS: Readonly<Record<WorkerState, readonly WorkerState[]>> = {
  starting: ['running', 'draining', 'stopping', 'failed'],
  running: ['draining', 'stopping', 'failed'],
  draining: ['running', 'stopping', 'failed'],
  stopping: ['stopped', 'failed'],
  stopped: [],
  failed: [],
};

/** True when `from → to` is in the table. */
export function canTransition(from: WorkerState, to: WorkerState): boolean {
  return TRANSITIONS[from].includes(to);
}

/** Holds the state; {@link Lifecycle.to} is the only way to change it and emits `worker:state`. */
export class Lifecycle {
  private current: WorkerState = 'starting';
  private lastError: string | undefined;

  constructor(
    private readonly events: WorkerEvents,
    private readonly hostname: string,
  ) {}

  get state(): WorkerState {
    return this.current;
  }

  /** Why the worker failed (state `failed`). */
  get error(): string | undefined {
    return this.lastError;
  }

  /** Moves to `to`; an illegal transition throws (a bug in the worker, never a user error). */
  to(to: WorkerState, error?: string): void {
    const from = this.current;
    if (!canTransition(from, to)) {
      throw new AsynxError('asynx.worker.illegalTransition', `Worker ${this.hostname} cannot go from ${from} to ${to}: this is a bug in asynx, please report it`, { exitCode: ExitCode.software, facts: { node: this.hostname, from, to } });
    }
    this.current = to;
    if (error !== undefined) this.lastError = error;
    this.events.emit('worker:state', { hostname: this.hostname, from, to, ...(error !== undefined ? { error } : {}) });
  }

  /** Moves to `to` when legal; returns whether it moved (for steps that may run in either order). */
  tryTo(to: WorkerState, error?: string): boolean {
    if (!canTransition(this.current, to)) return false;
    this.to(to, error);
    return true;
  }

  /** True while the worker may take new work. */
  get accepting(): boolean {
    return this.current === 'running' || this.current === 'starting';
  }
}
