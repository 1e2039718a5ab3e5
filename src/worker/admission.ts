// Admission of a delivery: decode, revoked, expired, max deliveries, eta hold, rate-limit hand-back, then the priority buffer.

import { DEDUPE_HEADER } from '../app/dedupe.js';
import { encodeError } from '../app/execute.js';
import { AsynxError, NotRegistered, ProtocolError, TaskRevokedError, WorkerLostError } from '../errors.js';
import { badEnvelope, decodeTaskMessage, type TaskRequest } from '../protocol/codec.js';
import type { WireMessage } from '../protocol/message.js';
import { errorBody } from '../results/body.js';
import type { Delivery } from '../transports/transport.js';
import type { Outcomes } from './outcome.js';
import { internalPublishMs, isoOrNull, taskBase, type Pending, type TaskIo } from './pending.js';
import { RateGates, type AppliedLimit } from './rate-gates.js';
import { RevokedSet } from './revoked.js';

/** Tasks due within this long are held here; later ones go back to a broker that can delay them. */
const ETA_HOLD_MS = 1000;

/**
 * Rate-limited tasks (Celery #8119: in Celery they wait on their bucket holding prefetch slots, so a
 * backlog of one limited task starves every other task of the worker). Here a limited task waits in the
 * buffer but never in a pool slot: {@link Admission.take} skips a task whose bucket has no token and
 * starts the next one of another name. It still holds a broker prefetch slot while it waits (unacked), so
 * few wait here: one whose token is due now, else those due within RATE_HOLD_MS, and never more than half
 * the prefetch window for all limited tasks together (none with a window of 1). Any further one goes back
 * to the broker's delayed store, republished with an eta at its projected start and then acked (one write
 * per task, no redelivery loop), as eta tasks do. So at least half the prefetch stays for other tasks,
 * memory stays bounded with a backlog of any size, and another node may take the handed-back task. Where
 * the broker's delays are coarse (the AMQP ladder counts whole seconds) the eta is that much early, capped
 * by what the hold may keep here, so the task waits here its last moment rather than going round again.
 * Without a delaying broker they wait here, as in Celery.
 */
const RATE_HOLD_MS = 2000;
/** A token due within this long counts as due now. */
const RATE_NOW_MS = 5;

/** Turns deliveries into due tasks in a priority buffer; holds eta tasks; discards revoked and expired ones. */
export class Admission {
  /** Due, not started: highest priority first, FIFO within a priority. */
  private readonly buffer: Pending[] = [];
  /** Waiting for their eta. */
  private readonly held = new Set<Pending>();
  /** Task ids revoked by remote control: not run when they arrive or come due (Celery keeps the same in memory). */
  readonly revoked = new RevokedSet();
  /** Token buckets of the rate limits. */
  readonly gates: RateGates;
  private seq = 0;

  constructor(
    private readonly io: TaskIo,
    private readonly outcomes: Outcomes,
    /** False once the worker drains: deliveries then go straight back. */
    private readonly accepting: () => boolean,
    /** Called when a task became due. */
    private readonly onDue: () => void,
    /** The consumer's prefetch window (rate-limited tasks may hold half of it). */
    private readonly prefetch: () => number = () => 8,
  ) {
    const shared = io.transport.takeRateToken?.bind(io.transport) ?? null;
    this.gates = new RateGates(io.limits, shared, onDue, (message) => io.events.emit('worker:error', { message }));
  }

  /** Handles one delivery; never rejects (a failure is reported as `worker:error`). */
  onDelivery(d: Delivery): void {
    this.receive(d).catch((err) => this.io.events.emit('worker:error', { message: `Handling message ${d.tag} failed: ${(err as Error).stack ?? String(err)}` }));
  }

  /** Marks a task id revoked (remote control). */
  revoke(id: string): void {
    this.revoked.add(id);
  }

  /**
   * The next due task that may start now, or undefined. A task revoked, or expired, while it waited (for a
   * pool slot or its rate-limit token) is discarded here (Celery checks both before it runs). A rate-limited
   * task without a token is skipped, with every later one of its bucket: tasks of other names behind it
   * start (its gate wakes the dispatcher when a token is due).
   */
  take(): Pending | undefined {
    const blocked = new Set<string>();
    for (let i = 0; i < this.buffer.length; ) {
      const p = this.buffer[i]!;
      const expired = p.req.expires !== null && p.req.expires <= Date.now();
      if (this.revoked.has(p.req.id) || expired) {
        this.buffer.splice(i, 1);
        this.discard(p, !this.revoked.has(p.req.id)).catch((err) => this.io.events.emit('worker:error', { message: `Discarding revoked task ${p.req.id} failed: ${(err as Error).message}`, taskId: p.req.id }));
        continue;
      }
      const limit = this.gates.limitOf(p);
      if (limit && (blocked.has(limit.key) || !this.gates.tryStart(limit))) {
        blocked.add(limit.key);
        i++;
        continue;
      }
      this.buffer.splice(i, 1);
      return p;
    }
    return undefined;
  }

  /** The dedupe key a message carries (sent with `dedupe` / `dedupeKey`), or null. */
  static dedupeKey(p: Pending): string | null {
    const k = p.req.headers[DEDUPE_HEADER];
    return typeof k === 'string' && k !== '' ? k : null;
  }

  /** The task ended here (or was discarded): its dedupe key is free again. Never rejects. */
  async releaseDedupe(p: Pending): Promise<void> {
    const key = Admission.dedupeKey(p);
    if (key === null || !this.io.transport.releaseDedupe) return;
    await this.io.transport.releaseDedupe(key, p.req.id).catch((err) => this.io.events.emit('worker:error', { message: `Releasing the dedupe key of ${p.req.id} failed: ${(err as Error).message}`, taskId: p.req.id }));
  }

  /** Not run: `task:revoked`, REVOKED in the result backend, then the ack. */
  private async discard(p: Pending, expired: boolean): Promise<void> {
    const { req } = p;
    this.io.events.emit('task:revoked', { ...taskBase(p, this.io.hostname), terminated: false, signum: null, expired, expires: isoOrNull(req.expires) });
    await this.outcomes.store(p, errorBody(req.id, 'REVOKED', encodeError(new TaskRevokedError(expired ? 'expired' : 'revoked', { taskId: req.id }))));
    await this.outcomes.ack(p);
    await this.releaseDedupe(p);
  }

  /** Due tasks waiting for a pool child. */
  get reserved(): readonly Pending[] {
    return this.buffer;
  }

  /** Tasks waiting for their eta. */
  get scheduled(): readonly Pending[] {
    return [...this.held];
  }

  private async receive(d: Delivery): Promise<void> {
    const { transport, events, hostname } = this.io;
    if (!this.accepting()) {
      await transport.reject(d, { requeue: true });
      return;
    }
    let req: TaskRequest;
    try {
      // The transport could not read the item as a message: the reason is its, not the codec's.
      if (d.malformed !== undefined) throw badEnvelope(d.malformed);
      req = decodeTaskMessage(d.message);
    } catch (err) {
      const e = err instanceof AsynxError ? err : new ProtocolError('asynx.protocol.invalid', (err as Error).message);
      const h = (typeof d.message.headers === 'object' && d.message.headers !== null ? d.message.headers : {}) as Record<string, unknown>;
      const id = typeof h.id === 'string' ? h.id : null;
      const replyTo = typeof d.message.properties.reply_to === 'string' ? d.message.properties.reply_to : null;
      await this.outcomes.invalid(d, e, id, replyTo);
      return;
    }
    const def = this.io.registry().getTask(req.task);
    if (!def) {
      const err = new NotRegistered(req.task, { taskId: req.id });
      events.emit('task:rejected', { taskId: req.id, name: req.task, hostname, timestamp: Date.now(), requeue: false, cause: 'notRegistered', reason: err.message });
      await this.outcomes.invalid(d, err, req.id, req.replyTo, req);
      return;
    }
    const p: Pending = { delivery: d, req, def, acked: false, abandoned: false, timer: null, startedAt: 0, seq: ++this.seq };
    const dedupe = Admission.dedupeKey(p);
    // Held from now (the message row is still leased) until it ends: an early ack deletes the row at start.
    if (dedupe !== null && transport.holdDedupe) {
      await transport.holdDedupe(dedupe, req.id).catch((err) => events.emit('worker:error', { message: `Holding the dedupe key of ${req.id} failed: ${(err as Error).message}`, taskId: req.id }));
    }
    if (this.revoked.has(req.id) || (req.expires !== null && req.expires <= Date.now())) {
      await this.discard(p, !this.revoked.has(req.id));
      return;
    }
    if (d.deliveryCount > this.io.config.maxDeliveries) {
      const reason = `delivered ${d.deliveryCount} times without completing: the worker running it died each time`;
      events.emit('task:rejected', { ...taskBase(p, hostname), requeue: false, cause: 'maxDeliveries', reason });
      await transport.reject(d, { requeue: false, reason });
      await this.outcomes.store(p, errorBody(req.id, 'FAILURE', encodeError(new WorkerLostError(reason, { taskId: req.id }))));
      await this.releaseDedupe(p); // it ended here: held since its receipt, the key would otherwise stay held while this node lives
      return;
    }
    if (events.has('task:received')) {
      events.emit('task:received', {
        ...taskBase(p, hostname),
        args: req.args,
        kwargs: req.kwargs,
        retries: req.retries,
        eta: isoOrNull(req.eta),
        expires: isoOrNull(req.expires),
        rootId: req.rootId,
        parentId: req.parentId,
        queue: d.queue,
        priority: req.priority,
        deliveryCount: d.deliveryCount,
      });
    }
    const wait = req.eta !== null ? req.eta - Date.now() : 0;
    if (wait > 0) {
      if (wait > ETA_HOLD_MS && transport.capabilities.delayedDelivery) {
        // Hand it back to the broker's delayed store rather than holding a prefetch slot.
        await transport.publish(d.queue, d.message as unknown as WireMessage, { timeoutMs: internalPublishMs(this.io.config) });
        await this.outcomes.ack(p);
        return;
      }
      this.held.add(p);
      p.timer = setTimeout(() => {
        this.held.delete(p);
        p.timer = null;
        this.enqueue(p);
      }, wait);
      return;
    }
    this.enqueue(p);
  }

  /** Puts a due task in the buffer, highest priority first (FIFO within a priority), or hands a rate-limited one back. */
  private enqueue(p: Pending): void {
    const limit = this.gates.limitOf(p);
    if (limit && this.io.transport.capabilities.delayedDelivery) {
      let ahead = 0;
      let limited = 0;
      for (const q of this.buffer) {
        const l = this.gates.limitOf(q);
        if (l) limited++;
        if (l?.key === limit.key) ahead++;
      }
      const share = Math.floor(this.prefetch() / 2);
      const wait = this.gates.projectedStart(limit, ahead) - Date.now();
      if (wait > RATE_NOW_MS && (limited >= share || wait > RATE_HOLD_MS)) {
        this.handBack(p, limit, ahead, share).catch((err) => {
          this.io.events.emit('worker:error', { message: `Handing rate-limited task ${p.req.id} back failed, it waits here: ${(err as Error).message}`, taskId: p.req.id });
          this.insert(p);
        });
        return;
      }
    }
    this.insert(p);
  }

  /** Back to the broker's delayed store with an eta at its projected start; the eta wait then comes first, the bucket after. */
  private async handBack(p: Pending, limit: AppliedLimit, ahead: number, share: number): Promise<void> {
    const early = Math.min(this.io.transport.capabilities.delayGranularityMs ?? 0, (share / 2) * limit.intervalMs, RATE_HOLD_MS / 2);
    const eta = new Date(Math.max(Date.now(), this.gates.handBackEta(limit, ahead) - early)).toISOString();
    const m = p.delivery.message;
    // Without the broker's dead-letter history: RabbitMQ takes a message that dead-letters again from a
    // queue named in its x-death for a cycle (a handed-back task came through the delay ladder before).
    const headers = Object.fromEntries(Object.entries(m.headers as Record<string, unknown>).filter(([k]) => !/^x-(death|first-death-|last-death-)/.test(k)));
    const message = { ...m, headers: { ...headers, eta } } as unknown as WireMessage;
    await this.io.transport.publish(p.delivery.queue, message, { timeoutMs: internalPublishMs(this.io.config) });
    await this.outcomes.ack(p);
  }

  private insert(p: Pending): void {
    // Redis (kombu) runs lower numbers first; the other brokers higher ones.
    const before = this.io.transport.capabilities.lowerPriorityFirst ? (a: number, b: number) => a > b : (a: number, b: number) => a < b;
    let i = this.buffer.length;
    while (i > 0 && before(this.buffer[i - 1]!.req.priority, p.req.priority)) i--;
    this.buffer.splice(i, 0, p);
    this.onDue();
  }

  /** Gives every not-started message back to its queue; resolves to how many went back. */
  async giveBack(): Promise<number> {
    const back = [...this.buffer.splice(0), ...this.held];
    this.held.clear();
    for (const p of back) {
      if (p.timer) clearTimeout(p.timer);
      if (!p.acked) await this.io.transport.reject(p.delivery, { requeue: true }).catch(() => undefined);
    }
    if (back.length) this.io.events.emit('message:restored', { count: back.length });
    return back.length;
  }
}
