// A fair multi-queue consumer on Redis: BRPOP over queue × priority lists on its own connection, rotating the queue order.

import type { Redis } from 'ioredis';
import { settlesWithin } from '../util/deadline.js';
import { PRIORITY_STEPS, queueOfList, SEP } from './redis-keys.js';

/** Server-side BRPOP timeout, seconds (kombu's). */
const BRPOP_TIMEOUT_S = 1;
/** How long cancel() waits for the loop to end before it drops the blocking connection, ms. */
const CANCEL_WAIT_MS = 2_000;
/** Most messages taken by one pop-and-record call (bounded by the free prefetch slots too). */
const MAX_BATCH = 32;
/** Pause after a failed BRPOP (Redis away) before the next try, ms. */
const RETRY_MS = 250;

/** What the consumer needs from its transport. */
export interface ConsumerHooks {
  /** Deliveries of this consumer not settled yet (BRPOP pauses at `prefetch`). */
  held(): number;
  /** Pops up to `max` ready items of `lists` (in order) and records them as unacked, atomically; empty when none is ready. */
  pop(lists: string[], queues: string[], max: number): Promise<Array<{ list: string; raw: string; tag: string }>>;
  /**
   * Handles one popped item (hands it out, or parks it); resolves when it is recorded. `tag` is the unacked
   * entry pop() wrote, null for an item BRPOP took (not recorded yet).
   */
  onItem(list: string, queue: string, raw: string, tag: string | null): Promise<void>;
  /** An item popped after cancel: put it back where it came from. */
  putBack(list: string, raw: string): Promise<void>;
  onError(err: unknown): void;
}

/**
 * Pops from `queues` while held deliveries stay under `prefetch`, as many as there are free slots (at most 32)
 * per call. Keys go priority step first, then queue, so a pop takes the highest-priority messages of any
 * queue; after each pop the queue it last took from moves to the end of the order (kombu's round-robin
 * cycle), so a busy queue cannot starve the others.
 */
export class RedisConsumer {
  private order: string[];
  private cancelled = false;
  private loop: Promise<void> | null = null;
  private wakeUp: (() => void) | null = null;
  private clientId: number | null = null;
  private inBrpop = false;

  constructor(
    queues: string[],
    private readonly prefetch: number,
    private readonly blocking: Redis,
    private readonly cmd: Redis,
    private readonly hooks: ConsumerHooks,
  ) {
    this.order = [...new Set(queues)];
    // A new connection has a new id (CLIENT UNBLOCK needs the current one).
    blocking.on('close', () => {
      this.clientId = null;
    });
  }

  start(): void {
    this.loop ??= this.run();
  }

  /** A held delivery was settled: there may be room again. */
  wake(): void {
    const w = this.wakeUp;
    this.wakeUp = null;
    w?.();
  }

  private keys(): string[] {
    const keys: string[] = [];
    for (const s of PRIORITY_STEPS) for (const q of this.order) keys.push(s === 0 ? q : `${q}${SEP}${s}`);
    return keys;
  }

  private keyQueues(): string[] {
    return PRIORITY_STEPS.flatMap(() => this.order);
  }

  private rotate(queue: string): void {
    const i = this.order.indexOf(queue);
    if (i >= 0 && this.order.length > 1) this.order.push(...this.order.splice(i, 1));
  }

  private async run(): Promise<void> {
    while (!this.cancelled) {
      if (this.hooks.held() >= this.prefetch) {
        await new Promise<void>((resolve) => {
          this.wakeUp = resolve;
          // Re-checked now and then, in case a wake-up was missed.
          setTimeout(resolve, 1000).unref();
        });
        continue;
      }
      // Ready messages are taken by the atomic pop-and-record script; BRPOP only waits for the next one when
      // every list is empty (and the item it returns is recorded right after: the one gap left, idle to busy).
      try {
        const room = Math.min(MAX_BATCH, this.prefetch - this.hooks.held());
        const popped = await this.hooks.pop(this.keys(), this.keyQueues(), room);
        if (popped.length) {
          for (const item of popped) {
            const queue = queueOfList(item.list);
            await this.hooks.onItem(item.list, queue, item.raw, item.tag).catch((err) => this.hooks.onError(err));
          }
          this.rotate(queueOfList(popped[popped.length - 1]!.list));
          continue;
        }
      } catch (err) {
        if (this.cancelled) break;
        this.hooks.onError(err);
        await new Promise((r) => setTimeout(r, RETRY_MS).unref());
        continue;
      }
      if (this.cancelled) break;
      let got: [string, string] | null;
      try {
        if (this.clientId === null) this.clientId = Number(await this.blocking.client('ID'));
        if (this.cancelled) break;
        this.inBrpop = true;
        got = (await this.blocking.brpop(...this.keys(), BRPOP_TIMEOUT_S)) as [string, string] | null;
      } catch (err) {
        this.inBrpop = false;
        if (this.cancelled) break;
        this.hooks.onError(err);
        await new Promise((r) => setTimeout(r, RETRY_MS).unref());
        continue;
      }
      this.inBrpop = false;
      if (!got) continue;
      const [list, raw] = got;
      if (this.cancelled) {
        await this.hooks.putBack(list, raw).catch((err) => this.hooks.onError(err));
        break;
      }
      const queue = queueOfList(list);
      this.rotate(queue);
      await this.hooks.onItem(list, queue, raw, null).catch((err) => this.hooks.onError(err));
    }
  }

  /**
   * Stops popping: a BRPOP in progress is ended at once (CLIENT UNBLOCK, which answers nil unless the server
   * already popped; an item popped meanwhile goes back to its list). Resolves once the loop ended (bounded:
   * with Redis away the blocking connection is dropped, and nothing was popped).
   */
  async cancel(): Promise<void> {
    if (this.cancelled) {
      if (this.loop) await settlesWithin(this.loop, CANCEL_WAIT_MS);
      return;
    }
    this.cancelled = true;
    this.wake();
    // Each wait is bounded: with Redis away, a command waits in ioredis's offline queue through its retries
    // (tens of seconds), and a warm shutdown must not wait for them.
    if (this.inBrpop && this.clientId !== null) await settlesWithin(this.cmd.client('UNBLOCK', this.clientId), 500);
    if (!this.loop) return;
    if (await settlesWithin(this.loop, CANCEL_WAIT_MS)) return;
    this.blocking.disconnect();
    // A pop still waiting on the command connection ends when it gives up; what it took is recorded in
    // `unacked`, so a sweep puts it back.
    await settlesWithin(this.loop, 1_000);
  }
}
