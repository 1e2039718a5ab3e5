// The client's open tickets: replies matched to their request, and the wait for a limit or a timeout.

import type { ControlWire } from './control-wire.js';

/** What `ControlWire.send` is asked to collect (null for a cast). */
export type Collect = Parameters<ControlWire['send']>[2];

/**
 * The replies a remote-control client is waiting for, by ticket. A wire hands every reply it reads to
 * {@link deliver}; {@link send} registers the ticket before publishing, so a reply that comes back before the
 * publish resolves is not missed, and waits for `limit` replies or `timeoutMs` counted from the publish.
 */
export class ReplyCollectors {
  private readonly open = new Map<string, (reply: Record<string, unknown>, clock: unknown) => void>();

  /** A reply read from the broker: a JSON object body under an open ticket is collected; anything else is dropped, as kombu does. */
  deliver(ticket: unknown, body: string, clock: unknown): void {
    const collector = typeof ticket === 'string' ? this.open.get(ticket) : undefined;
    if (!collector) return;
    let reply: unknown;
    try {
      reply = JSON.parse(body);
    } catch {
      return; // not JSON
    }
    if (typeof reply === 'object' && reply !== null && !Array.isArray(reply)) collector(reply as Record<string, unknown>, clock);
  }

  /** Publishes with `publish`, then (unless a cast) collects until `limit` replies came or `timeoutMs` passed. */
  async send(collect: Collect, publish: () => void | Promise<void>): Promise<void> {
    if (!collect) {
      await publish();
      return;
    }
    let finish: () => void = () => undefined;
    const done = new Promise<void>((resolve) => (finish = resolve));
    let count = 0;
    this.open.set(collect.ticket, (reply, clock) => {
      collect.onReply(reply, clock);
      if (collect.limit !== null && ++count >= collect.limit) finish();
    });
    let timer: NodeJS.Timeout | null = null;
    try {
      await publish();
      timer = setTimeout(finish, collect.timeoutMs);
      await done;
    } finally {
      if (timer) clearTimeout(timer);
      this.open.delete(collect.ticket);
    }
  }
}
