// rpc:// result backend, as Celery does it: results travel to the caller's own reply queue (spec §3).

import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage } from 'amqplib';
import { BrokerUnavailableError, TimeoutError } from '../errors.js';
import { JSON_CONTENT_TYPE, READY_STATES, type ResultBody } from '../protocol/message.js';
import { AmqpConnection, redactUrl } from '../transports/amqp-connection.js';
import type { ResultBackend, ResultTarget } from './backend.js';

/** Celery's reply queue arguments (kombu `oid` queue): gone a day after its last use. */
export const REPLY_QUEUE_ARGS = { 'x-expires': 86_400_000 } as const;

/** Options of the rpc:// backend. */
export interface RpcResultBackendOptions {
  connectTimeoutMs: number;
  publishTimeoutMs: number;
}

type Listener = (body: ResultBody) => void;

/**
 * The rpc:// backend. `replyTo` is this client's reply queue (non-durable, auto-delete,
 * `x-expires` one day), declared and consumed by `connect()`, which must therefore run
 * before this client sends tasks. Workers `store()` results by publishing them to the
 * message's `reply_to` (default exchange, `correlation_id` = task id, `delivery_mode` 1).
 * States are kept in memory per task id (latest wins; a ready state is final) until
 * `forget()`: in Celery rpc results are read once, and only by the client that sent the task.
 */
export class RpcResultBackend implements ResultBackend {
  readonly kind = 'rpc';
  readonly replyTo = randomUUID();
  private readonly conn: AmqpConnection;
  private readonly states = new Map<string, ResultBody>();
  private readonly listeners = new Map<string, Set<Listener>>();
  private pubCh: ConfirmChannel | null = null;
  private pubChOpening: Promise<ConfirmChannel> | null = null;
  private listening = false;
  private firstConnect: Promise<void> | null = null;
  private release: (() => void) | null = null;
  private closed = false;

  constructor(
    readonly brokerUrl: string,
    private readonly opts: RpcResultBackendOptions,
  ) {
    this.conn = new AmqpConnection(brokerUrl, { connectTimeoutMs: opts.connectTimeoutMs, connectionName: 'asynx rpc results' });
    this.conn.onOpen((c) => this.onOpen(c));
    this.conn.onLost(() => {
      this.pubCh = null;
      this.pubChOpening = null;
    });
  }

  private async onOpen(conn: ChannelModel): Promise<void> {
    this.pubCh = null;
    this.pubChOpening = null;
    if (this.listening) await this.listen(conn);
  }

  /** Declares this client's reply queue and consumes it (no acks, as Celery). */
  private async listen(conn: ChannelModel): Promise<void> {
    const ch: Channel = await conn.createChannel();
    ch.on('error', () => undefined);
    await ch.assertQueue(this.replyTo, { durable: false, autoDelete: true, exclusive: false, arguments: { ...REPLY_QUEUE_ARGS } });
    await ch.consume(this.replyTo, (msg) => this.onReply(msg), { noAck: true });
  }

  async connect(): Promise<void> {
    if (this.closed) throw new BrokerUnavailableError('The rpc:// result backend is closed');
    // Only the first connect waits for the broker. After that the hold keeps reconnecting and the
    // open hook re-declares and re-consumes the reply queue, so get()/wait() work from what has
    // arrived and keep waiting across a broker restart instead of failing at connectTimeout.
    if (!this.firstConnect) {
      this.firstConnect = this.connectFirst();
      this.firstConnect.catch(() => {
        this.firstConnect = null;
      });
    }
    await this.firstConnect;
  }

  private async connectFirst(): Promise<void> {
    this.listening = true;
    this.release = this.conn.hold();
    try {
      const current = this.conn.current;
      if (current) await this.listen(current);
      else await this.conn.get(Date.now() + this.opts.connectTimeoutMs, `connect the rpc:// result backend`);
    } catch (err) {
      this.listening = false;
      this.release();
      throw err;
    }
  }

  private onReply(msg: ConsumeMessage | null): void {
    if (!msg) return;
    const taskId = msg.properties.correlationId as string | undefined;
    let body: ResultBody | null = null;
    if (msg.properties.contentType && msg.properties.contentType !== JSON_CONTENT_TYPE) {
      // A worker configured with another result serializer: report it rather than leave the caller waiting.
      if (!taskId) return;
      body = {
        task_id: taskId,
        status: 'FAILURE',
        result: { exc_type: 'ContentDisallowed', exc_message: [`Refusing result with content type '${msg.properties.contentType}': set result_serializer='json' on the worker`], exc_module: 'kombu.exceptions' },
        traceback: null,
        children: [],
      };
    } else {
      try {
        const parsed = JSON.parse(msg.content.toString('utf8')) as Partial<ResultBody>;
        const id = typeof parsed.task_id === 'string' ? parsed.task_id : taskId;
        if (!id || typeof parsed.status !== 'string') return;
        body = { task_id: id, status: parsed.status, result: parsed.result ?? null, traceback: parsed.traceback ?? null, children: Array.isArray(parsed.children) ? parsed.children : [], ...(parsed.date_done !== undefined ? { date_done: parsed.date_done } : {}) };
      } catch {
        return; // not a result: ignore
      }
    }
    this.record(body);
  }

  private record(body: ResultBody): void {
    const prev = this.states.get(body.task_id);
    if (prev && READY_STATES.has(prev.status) && !READY_STATES.has(body.status)) return;
    this.states.set(body.task_id, body);
    for (const l of this.listeners.get(body.task_id) ?? []) l(body);
  }

  private async publishChannel(deadline: number, what: string): Promise<ConfirmChannel> {
    for (;;) {
      if (this.pubCh) return this.pubCh;
      this.pubChOpening ??= (async () => {
        const conn = await this.conn.get(deadline, what);
        const ch = await conn.createConfirmChannel();
        ch.on('error', () => undefined);
        ch.on('close', () => {
          if (this.pubCh === ch) this.pubCh = null;
        });
        this.pubCh = ch;
        return ch;
      })().finally(() => {
        this.pubChOpening = null;
      });
      const ch = await this.pubChOpening;
      if (ch === this.pubCh) return ch;
    }
  }

  async store(target: ResultTarget, body: ResultBody): Promise<void> {
    if (!target.replyTo) return;
    const what = `send the result of task ${target.taskId} to reply queue '${target.replyTo}'`;
    const timeoutMs = this.opts.publishTimeoutMs;
    const deadline = Date.now() + timeoutMs;
    const content = Buffer.from(JSON.stringify(body), 'utf8');
    for (let attempt = 0; ; attempt++) {
      if (this.closed) throw new BrokerUnavailableError(`Cannot ${what}: the rpc:// result backend is closed`);
      let timer: NodeJS.Timeout | undefined;
      try {
        const ch = await this.publishChannel(deadline, what);
        await new Promise<void>((resolve, reject) => {
          timer = setTimeout(() => reject(this.conn.unavailable(what, deadline, timeoutMs)), Math.max(0, deadline - Date.now()));
          ch.publish('', target.replyTo!, content, { correlationId: target.taskId, deliveryMode: 1, priority: 0, contentType: JSON_CONTENT_TYPE, contentEncoding: 'utf-8', headers: {} }, (err) =>
            err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve(),
          );
        });
        return;
      } catch (err) {
        if (err instanceof BrokerUnavailableError) throw err;
        if (Date.now() >= deadline) {
          throw new BrokerUnavailableError(`Cannot ${what}: RabbitMQ at ${redactUrl(this.brokerUrl)} did not confirm within ${timeoutMs} ms (${(err as Error).message})`, { cause: err, facts: { taskId: target.taskId, timedOut: true } });
        }
        await sleep(Math.min(50 * 2 ** Math.min(attempt, 4), Math.max(0, deadline - Date.now())));
      } finally {
        clearTimeout(timer);
      }
    }
  }

  async get(taskId: string): Promise<ResultBody | null> {
    await this.connect();
    return this.states.get(taskId) ?? null;
  }

  async wait(taskId: string, timeoutMs: number, onState?: (body: ResultBody) => void): Promise<ResultBody> {
    await this.connect();
    const known = this.states.get(taskId);
    if (known) onState?.(known);
    if (known && READY_STATES.has(known.status)) return known;
    return new Promise<ResultBody>((resolve, reject) => {
      let set = this.listeners.get(taskId);
      if (!set) this.listeners.set(taskId, (set = new Set()));
      const done = () => {
        clearTimeout(timer);
        set!.delete(listener);
        if (set!.size === 0) this.listeners.delete(taskId);
      };
      const listener: Listener = (body) => {
        onState?.(body);
        if (!READY_STATES.has(body.status)) return;
        done();
        resolve(body);
      };
      const timer = setTimeout(() => {
        done();
        const state = this.states.get(taskId)?.status ?? 'PENDING';
        reject(new TimeoutError(`The result of task ${taskId} was not ready within ${timeoutMs} ms (state ${state}): is a worker consuming its queue, and does it use result backend rpc://?`, { taskId }));
      }, timeoutMs);
      set.add(listener);
    });
  }

  async forget(taskId: string): Promise<void> {
    this.states.delete(taskId);
  }

  async cleanup(): Promise<number> {
    return 0;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.release?.();
    await this.conn.close();
  }
}
