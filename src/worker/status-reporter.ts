// Keeps the node's status file (beside its pidfile) current by subscribing to the worker's events.

import { removeStatus, writeStatus, type NodeStatus } from '../process/status-file.js';
import type { WorkerEvents } from './events.js';

/** Task events refresh the file at most this often (a sync write per task would cost throughput). */
const TASK_REFRESH_MS = 100;

/** Writes the status file on every lifecycle and pool event, on each heartbeat, and soon after task events. */
export class StatusReporter {
  private offs: Array<() => void> = [];
  private pending: NodeJS.Timeout | null = null;
  private flush: Promise<void> | null = null;
  private removed = false;

  constructor(
    readonly path: string,
    private readonly events: WorkerEvents,
    private readonly snapshot: () => Omit<NodeStatus, 'updatedAt'>,
  ) {}

  /** Subscribes and writes the first snapshot. */
  start(): void {
    const now = () => this.write();
    const soon = () => {
      if (this.pending) return;
      this.pending = setTimeout(() => {
        this.pending = null;
        this.write();
      }, TASK_REFRESH_MS);
      this.pending.unref();
    };
    this.offs = [
      this.events.on('worker:state', now),
      this.events.on('worker:heartbeat', now),
      this.events.on('pool:child:up', now),
      this.events.on('pool:child:exit', now),
      this.events.on('pool:child:replaced', now),
      this.events.on('task:received', soon),
      this.events.on('task:started', soon),
      this.events.on('message:restored', soon),
      this.events.on('task:succeeded', soon),
      this.events.on('task:failed', soon),
      this.events.on('task:retried', soon),
      this.events.on('task:rejected', soon),
    ];
    this.write();
  }

  /**
   * Writes a snapshot before the next turn of the event loop; every call made in the same turn shares the write.
   * Dispatch awaits it before a pool child gets an acks-early task, so a node killed afterwards has the task on
   * record (issue 9). Resolves even when the write fails (that is a `worker:warning`).
   */
  record(): Promise<void> {
    if (!this.flush) {
      this.flush = new Promise((resolve) => {
        setImmediate(() => {
          this.flush = null;
          if (this.pending) clearTimeout(this.pending);
          this.pending = null;
          if (!this.removed) this.write();
          resolve();
        });
      });
    }
    return this.flush;
  }

  /** Writes one snapshot now; a failure is a `worker:warning`, never thrown. */
  write(): void {
    try {
      writeStatus(this.path, { ...this.snapshot(), updatedAt: Date.now() });
    } catch (err) {
      this.events.emit('worker:warning', { message: `Cannot write status file ${this.path}: ${(err as Error).message}` });
    }
  }

  /** Unsubscribes and removes the file; throws when it cannot be removed (the caller reports it). */
  remove(): void {
    this.removed = true;
    for (const off of this.offs.splice(0)) off();
    if (this.pending) clearTimeout(this.pending);
    this.pending = null;
    removeStatus(this.path);
  }
}
