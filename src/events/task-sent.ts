// A client's `task-sent` events (Celery's task_send_sent_event): one per published task, from `gen<pid>@<host>`.

import type { WireMessage } from '../protocol/message.js';
import type { Transport } from '../transports/transport.js';
import { LamportClock } from './clock.js';
import { EventDispatcher } from './dispatcher.js';
import { saferepr } from '../protocol/saferepr.js';
import { openEventSink } from './open-sink.js';

/** Sends `task-sent` for the tasks a client publishes; opens its sink on first use. */
export class SentEvents {
  private dispatcher: Promise<EventDispatcher | null> | null = null;
  private readonly clock = new LamportClock();

  constructor(
    private readonly hostname: string,
    private readonly brokerUrl: string,
    private readonly connectTimeoutMs: number,
  ) {}

  /**
   * Announces a published task message: `uuid, name, args, kwargs` (Python reprs), `retries, eta, expires,
   * root_id, parent_id, queue, exchange, routing_key`. Never throws and never delays the caller.
   */
  announce(transport: Transport, queue: string, message: WireMessage, args: unknown[], kwargs: Record<string, unknown>): void {
    this.dispatcher ??= openEventSink(transport, this.brokerUrl, { hostname: this.hostname, connectTimeoutMs: this.connectTimeoutMs }).then(
      // Celery publishes task-sent on its own (`task.sent`), never in a task.multi list.
      (sink) => new EventDispatcher(sink, { hostname: this.hostname, clock: this.clock, bufferGroups: [] }),
      () => null,
    );
    const h = message.headers;
    const at = Date.now();
    const fields = { uuid: h.id, name: h.task, args: saferepr(args), kwargs: saferepr(kwargs), retries: h.retries ?? 0, eta: h.eta ?? null, expires: h.expires ?? null, root_id: h.root_id, parent_id: h.parent_id ?? null, queue, exchange: '', routing_key: queue };
    void this.dispatcher.then((d) => d?.send('task-sent', fields, at));
  }

  /** Sends what is pending and closes the sink. */
  async close(): Promise<void> {
    const d = await this.dispatcher;
    this.dispatcher = null;
    await d?.close();
  }
}
