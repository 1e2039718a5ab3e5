// rpc:// result backend, as Celery does it: results travel to the caller's own reply queue (spec §3).

import { randomUUID } from 'node:crypto';
import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import { ConfirmChannelSlot, publishConfirmed, untilConfirmed } from '../amqp/confirm-channel.js';
import { AmqpConnection } from '../amqp/connection.js';
import { BrokerUnavailableError, TimeoutError } from '../errors.js';
import { JSON_CONTENT_TYPE, READY_STATES, type ResultBody } from '../protocol/message.js';
import { Releasers } from '../util/close-once.js';
import { redact } from '../util/redact.js';
import type { ResultBackend, ResultTarget } from './backend.js';

/** Celery's reply queue arguments (kombu `oid` queue): gone a day after its last use. */
export const REPLY_QUEUE_ARGS = { 'x-expires': 86_400_000 } as const;

/** Options of the rpc:// backend. */
export interface RpcResultBackendOptions {
  connectTimeoutMs: number;
  publishTimeoutMs: number;
}

/** A wait() in progress: called with each state; `abort` ends it when the backend closes. */
interface Listener {
  (body: ResultBody): void;
  abort: (err: Error) => void;
}

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
  private readonly pub: ConfirmChannelSlot;
  private listening = false;
  private firstConnect: Promise<void> | null = null;
  private readonly releasers = new Releasers();

  constructor(
    readonly brokerUrl: string,
    private readonly opts: RpcResultBackendOptions,
  ) {
    this.conn = new AmqpConnection(brokerUrl, { connectTimeoutMs: opts.connectTimeoutMs, connectionName: 'asynx rpc results' });
    this.pub = new ConfirmChannelSlot(this.conn);
    this.conn.onOpen((c) => this.onOpen(c));
    this.conn.onLost(() => this.pub.reset());
    // Run newest first by close(): the hold goes (registered by connect()), waits end, then the connection
    // (its channels with it).
    this.releasers.add('close the AMQP connection', () => this.conn.close());
    this.releasers.add('end the waits in progress', () => {
      const closed = new BrokerUnavailableError(`The rpc:// result backend on ${redact(this.brokerUrl)} was closed while waiting for a result`);
      for (const set of this.listeners.values()) for (const l of set) l.abort(closed);
      this.listeners.clear();
    });
  }

  private get closed(): boolean {
    return this.releasers.closed;
  }

  private async onOpen(conn: ChannelModel): Promise<void> {
    this.pub.reset();
    if (this.listening) await this.listen(conn);
  }

  /** Declares this client's reply queue and consumes it (no acks, as Celery), bounded by connectTimeout. */
  private async listen(conn: ChannelModel): Promise<void> {
    const deadline = Date.now() + this.opts.connectTimeoutMs;
    const what = `listen on reply queue '${this.replyTo}'`;
    const ch: Channel = await this.conn.bounded(conn.createChannel(), deadline, what);
    ch.on('error', () => undefined);
    await this.conn.bounded(ch.assertQueue(this.replyTo, { durable: false, autoDelete: true, exclusive: false, arguments: { ...REPLY_QUEUE_ARGS } }), deadline, what);
    await this.conn.bounded(ch.consume(this.replyTo, (msg) => this.onReply(msg), { noAck: true }), deadline, what);
  }

  async connect(): Promise<void> {
    if (this.closed) throw new BrokerUnavailableError(`The rpc:// result backend on ${redact(this.brokerUrl)} is closed: create a new one`);
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
    const release = this.conn.hold();
    try {
      const current = this.conn.current;
      if (current) await this.listen(current);
      else await this.conn.get(Date.now() + this.opts.connectTimeoutMs, `connect the rpc:// result backend`);
    } catch (err) {
      this.listening = false;
      release();
      throw err;
    }
    this.releasers.add('stop reconnecting', release);
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

  async store(target: ResultTarget, body: ResultBody): Promise<void> {
    if (!target.replyTo) return;
    const what = `send the result of task ${target.taskId} to reply queue '${target.replyTo}'`;
    const timeoutMs = this.opts.publishTimeoutMs;
    const deadline = Date.now() + timeoutMs;
    const content = Buffer.from(JSON.stringify(body), 'utf8');
    const replyTo = target.replyTo;
    await untilConfirmed(
      async () => {
        const ch = await this.pub.get(deadline, what);
        await publishConfirmed(this.conn, ch, '', replyTo, content, { correlationId: target.taskId, deliveryMode: 1, priority: 0, contentType: JSON_CONTENT_TYPE, contentEncoding: 'utf-8', headers: {} }, deadline, what);
      },
      { deadline, timeoutMs, what, url: this.brokerUrl, closed: () => this.closed, facts: { taskId: target.taskId } },
    );
  }

  async get(taskId: string): Promise<ResultBody | null> {
    await this.connect();
    return this.states.get(taskId) ?? null;
  }

  async wait(taskId: string, timeoutMs: number, onState?: (body: ResultBody) => void): Promise<ResultBody> {
    await this.connect();
    if (this.closed) throw new BrokerUnavailableError(`Cannot wait for task ${taskId}: the rpc:// result backend on ${redact(this.brokerUrl)} is closed`, { facts: { taskId } });
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
      const listener: Listener = Object.assign(
        (body: ResultBody) => {
          onState?.(body);
          if (!READY_STATES.has(body.status)) return;
          done();
          resolve(body);
        },
        {
          abort: (err: Error) => {
            done();
            reject(err);
          },
        },
      );
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

  /** Closes for good: pending waits reject, the connection closes. The same promise on every call. */
  close(): Promise<void> {
    return this.releasers.close();
  }
}
