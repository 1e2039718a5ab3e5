// Feeds the dashboard's state: Celery events as they come, `stats` / `active_queues` every inspect interval,
// queue lengths every queue interval (transport.count: SQLite rows; RabbitMQ queue.declare's message count,
// so no management plugin is needed).

import type { ControlClient } from '../control/client.js';
import type { CeleryEvent } from '../events/event.js';
import type { Transport } from '../transports/transport.js';
import type { History } from './history.js';
import type { ClusterState, DashboardTaskState } from './state.js';

/** What the collector tells the server, so pages get pushed exactly what changed. */
export interface CollectorListener {
  task(uuid: string): void;
  worker(hostname: string): void;
  minute(): void;
  queues(): void;
}

/** What the collector reads from. */
export interface CollectorSources {
  control: ControlClient;
  transport: Transport;
  /** Queues counted whatever the nodes say (the app's default queue, `queues` option). */
  baseQueues: string[];
  inspectIntervalMs: number;
  queueIntervalMs: number;
  enableEvents: boolean;
  /**
   * Judge liveness by the sender's `timestamp` rather than the receive time. True on SQLite, where sender and
   * dashboard share a host (one clock) and retained events are replayed at start: a replayed heartbeat of a dead
   * node must not make it look alive. False on RabbitMQ, as Celery (clocks of other hosts may be skewed).
   */
  senderClock: boolean;
}

const OUTCOME: Partial<Record<DashboardTaskState, 'succeeded' | 'failed' | 'retried'>> = { SUCCESS: 'succeeded', FAILURE: 'failed', RETRY: 'retried' };

/** Polls and folds; `start()` begins, `stop()` ends every timer and waits for a poll in flight. */
export class Collector {
  private timers: NodeJS.Timeout[] = [];
  private inFlight = new Set<Promise<unknown>>();
  private stopped = false;
  /** Queues purged or seen in replies: counted from then on. */
  private readonly known = new Set<string>();

  constructor(
    private readonly state: ClusterState,
    private readonly history: History,
    private readonly src: CollectorSources,
    private readonly listener: CollectorListener,
  ) {
    for (const q of src.baseQueues) this.known.add(q);
  }

  /** The receiver's callback: one Celery event. */
  onEvent = (e: CeleryEvent): void => {
    if (this.stopped) return;
    const received = typeof e.local_received === 'number' ? e.local_received * 1000 : Date.now();
    const receivedAt = this.src.senderClock && typeof e.timestamp === 'number' ? Math.min(received, e.timestamp * 1000) : received;
    const applied = this.state.apply(e, receivedAt);
    if (applied.worker) this.listener.worker(applied.worker);
    if (applied.task) this.listener.task(applied.task);
    const outcome = applied.taskState ? OUTCOME[applied.taskState] : undefined;
    if (outcome) {
      const at = typeof e.timestamp === 'number' ? e.timestamp * 1000 : receivedAt;
      this.history.count(outcome, at);
      this.listener.minute();
    }
  };

  start(): void {
    this.track(this.inspect());
    this.track(this.countQueues());
    this.timers.push(setInterval(() => this.track(this.inspect()), this.src.inspectIntervalMs));
    this.timers.push(setInterval(() => this.track(this.countQueues()), this.src.queueIntervalMs));
    for (const t of this.timers) t.unref();
  }

  /** Asks now (after an action), without waiting for the next tick. */
  refresh(): void {
    this.track(this.inspect());
    this.track(this.countQueues());
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    await Promise.allSettled([...this.inFlight]);
  }

  /** Every queue worth counting: the base ones, the ones nodes consume from, and any seen before. */
  queueNames(): string[] {
    for (const q of this.state.consumedQueues()) this.known.add(q);
    return [...this.known].sort();
  }

  private track(p: Promise<unknown>): void {
    const tracked = p.catch(() => {}).finally(() => this.inFlight.delete(tracked));
    this.inFlight.add(tracked);
  }

  private busy = { inspect: false, queues: false };

  private async inspect(): Promise<void> {
    if (this.stopped || this.busy.inspect) return;
    this.busy.inspect = true;
    try {
      const timeoutMs = Math.min(1000, this.src.inspectIntervalMs);
      if (this.src.enableEvents) void this.src.control.broadcast('enable_events', {}, { reply: false }).catch(() => {});
      const [stats, queues] = await Promise.all([this.src.control.broadcast('stats', {}, { timeoutMs }), this.src.control.broadcast('active_queues', {}, { timeoutMs })]);
      if (this.stopped) return;
      for (const reply of stats) {
        for (const [node, answer] of Object.entries(reply)) {
          if (answer && typeof answer === 'object' && !('error' in answer)) {
            this.state.applyStats(node, answer as Record<string, unknown>);
            this.listener.worker(node);
          }
        }
      }
      for (const reply of queues) {
        for (const [node, answer] of Object.entries(reply)) {
          this.state.applyActiveQueues(node, answer);
          this.listener.worker(node);
        }
      }
    } finally {
      this.busy.inspect = false;
    }
  }

  private async countQueues(): Promise<void> {
    if (this.stopped || this.busy.queues) return;
    this.busy.queues = true;
    try {
      const names = this.queueNames();
      const lengths: Record<string, number | null> = {};
      // One at a time: on RabbitMQ a refused declare (a queue declared with other arguments) closes the channel.
      for (const q of names) {
        try {
          lengths[q] = await this.src.transport.count(q);
        } catch {
          lengths[q] = null;
        }
      }
      if (this.stopped) return;
      this.history.sample(lengths, Date.now());
      this.listener.queues();
    } finally {
      this.busy.queues = false;
    }
  }

  /** Adds a queue to the counted set (an operator named it). */
  watch(queue: string): void {
    this.known.add(queue);
  }
}
