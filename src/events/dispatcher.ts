// Builds Celery events (the common fields, the Lamport clock) and hands them to a sink: Celery's EventDispatcher.

import type { LamportClock } from './clock.js';
import { eventGroup, utcoffsetHoursAt, type CeleryEvent } from './event.js';
import type { EventSink } from './sink.js';

/** Options of {@link EventDispatcher}. */
export interface DispatcherOptions {
  /** Node name, `name@host` (the events' `hostname`). */
  hostname: string;
  /** The node's clock: each event ticks it. */
  clock: LamportClock;
  /** Groups whose events are buffered and sent as one list (Celery buffers `task`). @defaultValue `['task']` */
  bufferGroups?: string[];
}

/** Sends Celery events for one node: `type`, `timestamp`, `hostname`, `utcoffset`, `pid`, `clock`, plus the fields. */
export class EventDispatcher {
  private readonly bufferGroups: Set<string>;

  constructor(
    private readonly sink: EventSink,
    private readonly opts: DispatcherOptions,
  ) {
    this.bufferGroups = new Set(opts.bufferGroups ?? ['task']);
  }

  /** The event as it goes on the wire. `timestampMs` (epoch ms) defaults to now. */
  build(type: string, fields: Record<string, unknown>, timestampMs = Date.now()): CeleryEvent {
    // Copied key by key: an object spread followed by more keys is several times slower here (bench case 8).
    const event = {} as CeleryEvent;
    for (const k in fields) event[k] = fields[k];
    event.type = type;
    event.timestamp = timestampMs / 1000;
    event.hostname = this.opts.hostname;
    event.utcoffset = utcoffsetHoursAt(timestampMs);
    event.pid = process.pid;
    event.clock = this.opts.clock.tick();
    return event;
  }

  /** Sends one event; task events are buffered (one `task.multi` message per turn of the event loop). */
  send(type: string, fields: Record<string, unknown> = {}, timestampMs?: number): void {
    const event = this.build(type, fields, timestampMs);
    if (this.bufferGroups.has(eventGroup(type))) this.sink.buffer(event);
    else this.sink.send(event);
  }

  /** Sends buffered events and lets go of the sink. */
  close(): Promise<void> {
    return this.sink.close();
  }
}
