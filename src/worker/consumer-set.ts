// The queues a worker consumes from, changed at run time by remote control (`add_consumer`, `cancel_consumer`, `pool_grow`).

import type { Consumer, DeliveryHandler, Transport } from '../transports/transport.js';

/**
 * One transport consumer over the node's queues. A change of queues or prefetch while consuming
 * re-subscribes: the old consumer is cancelled (its held deliveries stay held until settled, as the
 * transport contract says) and a new one starts on the new list. Changes run one at a time.
 */
export class ConsumerSet {
  private consumer: Consumer | null = null;
  private consuming = false;
  private chain: Promise<void> = Promise.resolve();
  private current: string[];

  constructor(
    private readonly transport: Transport,
    queues: readonly string[],
    private prefetchCount: number,
    private readonly onDelivery: DeliveryHandler,
  ) {
    this.current = [...queues];
  }

  /** The queues, in the order they were added. */
  get queues(): readonly string[] {
    return this.current;
  }

  get prefetch(): number {
    return this.prefetchCount;
  }

  /** Starts consuming (idempotent). */
  start(): Promise<void> {
    return this.serial(async () => {
      if (this.consuming && this.consumer) return;
      this.consuming = true;
      await this.resubscribe();
    });
  }

  /** Stops consuming (idempotent); the queue list is kept for the next start. */
  stop(): Promise<void> {
    return this.serial(async () => {
      this.consuming = false;
      await this.drop();
    });
  }

  /** Adds a queue (declared first); false when it was already consumed. */
  add(queue: string): Promise<boolean> {
    return this.serial(async () => {
      if (this.current.includes(queue)) return false;
      await this.transport.declareQueue(queue);
      this.current = [...this.current, queue];
      if (this.consuming) await this.resubscribe();
      return true;
    });
  }

  /** Stops consuming one queue; false when it was not consumed. */
  remove(queue: string): Promise<boolean> {
    return this.serial(async () => {
      if (!this.current.includes(queue)) return false;
      this.current = this.current.filter((q) => q !== queue);
      if (this.consuming) await this.resubscribe();
      return true;
    });
  }

  /** Changes how many deliveries may be held unacknowledged (the pool grew or shrank). */
  setPrefetch(n: number): Promise<void> {
    return this.serial(async () => {
      if (n === this.prefetchCount || n < 1) return;
      this.prefetchCount = n;
      if (this.consuming) await this.resubscribe();
    });
  }

  private async resubscribe(): Promise<void> {
    await this.drop();
    if (this.current.length) this.consumer = await this.transport.consume(this.current, this.prefetchCount, this.onDelivery);
  }

  private async drop(): Promise<void> {
    const c = this.consumer;
    this.consumer = null;
    await c?.cancel();
  }

  private serial<T>(step: () => Promise<T>): Promise<T> {
    const run = this.chain.then(step);
    this.chain = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }
}
