// The task events of a sink, batched into Celery's `task.multi` lists: sent at BUFFER_LIMIT events or FLUSH_MS after the first.

import type { CeleryEvent } from './event.js';

/** Celery's dispatcher flushes a group's buffer at this many events (`buffer_limit`). */
export const BUFFER_LIMIT = 24;
/**
 * Buffered task events leave at most this long after the first of them, ms. Celery flushes at the next
 * turn of its event loop instead; on a busy node that is a message every task or two, and each message
 * costs the broker more than its events (bench case 8).
 */
export const FLUSH_MS = 100;

/** Collects task events and hands each full or timed-out batch to `send` as one list (the AMQP and Redis sinks). */
export class TaskMultiBatch {
  private events: CeleryEvent[] = [];
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly send: (events: CeleryEvent[]) => void) {}

  add(event: CeleryEvent): void {
    this.events.push(event);
    if (this.events.length >= BUFFER_LIMIT) this.flush();
    else if (!this.timer) {
      this.timer = setTimeout(() => this.flush(), FLUSH_MS);
      this.timer.unref();
    }
  }

  /** Sends what is buffered now (Celery's `flush`); nothing when empty. */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const events = this.events;
    if (!events.length) return;
    this.events = [];
    this.send(events);
  }
}
