// A self-healing AMQP connection: bounded connects, reconnect with backoff and jitter, open/lost hooks.
// The one connection layer under the AMQP transport, the rpc:// result backend and the pidbox.

import amqplib from 'amqplib';
import type { ChannelModel } from 'amqplib';
import { setTimeout as sleep } from 'node:timers/promises';
import { BrokerUnavailableError } from '../errors.js';
import { backoffDelay } from '../util/backoff.js';
import { withDeadline } from '../util/deadline.js';
import { redact } from '../util/redact.js';

/** Options of {@link AmqpConnection}. */
export interface AmqpConnectionOptions {
  /** Bound on one connect attempt (TCP + AMQP handshake), ms. */
  connectTimeoutMs: number;
  /** First reconnect delay, ms. @defaultValue 100 */
  minBackoffMs?: number;
  /** Longest reconnect delay, ms. @defaultValue 5000 */
  maxBackoffMs?: number;
  /** Shown to the broker (`rabbitmqctl list_connections client_properties`). @defaultValue 'asynx' */
  connectionName?: string;
}

/** Runs after each (re)connect, before waiters get the connection; a throw drops the connection and retries. */
export type OpenHook = (conn: ChannelModel, generation: number) => Promise<void>;

/** Delay before reconnect attempt `attempt` (0-based), ms: exponential, capped, "equal jitter" (never less than half). */
export function reconnectDelay(attempt: number, minMs: number, maxMs: number, random: () => number = Math.random): number {
  return Math.round(backoffDelay({ base: minMs, max: maxMs, jitter: 'equal' }, attempt, random));
}

interface Waiter {
  resolve: (conn: ChannelModel) => void;
  reject: (err: unknown) => void;
  timer: NodeJS.Timeout;
}

/**
 * One AMQP connection that comes back by itself. It reconnects while someone needs it
 * (a waiter, or a holder such as a running consumer) and stays idle otherwise, so a
 * client whose broker is gone does not keep the process alive.
 */
export class AmqpConnection {
  /** Increases on every successful connect; lets users tell stale channels apart. */
  generation = 0;
  private conn: ChannelModel | null = null;
  private loop: Promise<void> | null = null;
  private readonly waiters = new Set<Waiter>();
  private holders = 0;
  private closed = false;
  private closing: Promise<void> | null = null;
  private lastError: unknown = null;
  /** Set while the broker blocks publishers (memory or disk alarm), with its reason. */
  private blockedReason: string | null = null;
  private readonly openHooks: OpenHook[] = [];
  private readonly lostHooks: Array<(generation: number) => void> = [];
  private wakeBackoff: AbortController | null = null;
  private readonly minBackoffMs: number;
  private readonly maxBackoffMs: number;

  constructor(
    readonly url: string,
    private readonly opts: AmqpConnectionOptions,
  ) {
    this.minBackoffMs = opts.minBackoffMs ?? 100;
    this.maxBackoffMs = opts.maxBackoffMs ?? 5_000;
  }

  /** Registers a hook that runs after every (re)connect. */
  onOpen(hook: OpenHook): void {
    this.openHooks.push(hook);
  }

  /** Registers a hook that runs when an open connection is lost. */
  onLost(hook: (generation: number) => void): void {
    this.lostHooks.push(hook);
  }

  /** The open connection, if any, without waiting. */
  get current(): ChannelModel | null {
    return this.conn;
  }

  /** Keeps reconnecting while held (a consumer holds it); returns the release function. */
  hold(): () => void {
    this.holders++;
    this.kick();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.holders--;
    };
  }

  /** The open connection, waiting (bounded by `deadline`, epoch ms) for a (re)connect. */
  async get(deadline: number, what = 'connect'): Promise<ChannelModel> {
    if (this.closed) throw new BrokerUnavailableError(`Cannot ${what}: the AMQP connection to ${redact(this.url)} was closed by this process`);
    if (this.conn) return this.conn;
    const waitMs = Math.max(0, deadline - Date.now());
    return new Promise<ChannelModel>((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters.delete(waiter);
          reject(this.unavailable(what, deadline, waitMs));
        }, waitMs),
      };
      this.waiters.add(waiter);
      this.kick();
    });
  }

  /** The error for "no connection in time", with the last connect failure as cause. */
  unavailable(what: string, deadline: number, waitedMs?: number): BrokerUnavailableError {
    const last = this.lastError instanceof Error ? ` (last error: ${this.lastError.message})` : '';
    const ms = waitedMs ?? Math.max(0, deadline - Date.now());
    if (this.conn && this.blockedReason !== null) {
      return new BrokerUnavailableError(
        `Cannot ${what}: RabbitMQ at ${redact(this.url)} is blocking publishers (${this.blockedReason || 'resource alarm'})${ms ? ` and did not unblock within ${ms} ms` : ''}. Free memory or disk space on the broker (rabbitmq-diagnostics alarms)`,
        { facts: { timedOut: true, value: redact(this.url) } },
      );
    }
    if (this.conn) {
      return new BrokerUnavailableError(
        `Cannot ${what}: RabbitMQ at ${redact(this.url)} is connected but did not answer${ms ? ` within ${ms} ms` : ''}. Check the broker's health (rabbitmq-diagnostics status), or raise the timeout`,
        { facts: { timedOut: true, value: redact(this.url) } },
      );
    }
    return new BrokerUnavailableError(
      `Cannot ${what}: RabbitMQ at ${redact(this.url)} is not reachable${ms ? ` within ${ms} ms` : ''}${last}. Check that the broker is running and the URL, user and vhost are right (ASYNX_BROKER_URL), or raise the timeout (ASYNX_PUBLISH_TIMEOUT, ASYNX_CONNECT_TIMEOUT)`,
      { cause: this.lastError ?? undefined, facts: { timedOut: true, value: redact(this.url) } },
    );
  }

  /**
   * Races `p` against `deadline` (epoch ms): the one deadline rule for every step on this connection.
   * The timeout error says whether the broker is unreachable, blocking publishers or slow.
   */
  bounded<T>(p: Promise<T>, deadline: number, what: string): Promise<T> {
    const waited = Math.max(0, deadline - Date.now());
    return withDeadline(p, waited, () => this.unavailable(what, deadline, waited));
  }

  private wanted(): boolean {
    return !this.closed && (this.waiters.size > 0 || this.holders > 0);
  }

  private kick(): void {
    if (this.conn || this.loop || !this.wanted()) return;
    this.loop = this.reconnectLoop().finally(() => {
      this.loop = null;
    });
  }

  private async reconnectLoop(): Promise<void> {
    for (let attempt = 0; this.wanted(); attempt++) {
      if (attempt > 0) {
        this.wakeBackoff = new AbortController();
        await sleep(reconnectDelay(attempt - 1, this.minBackoffMs, this.maxBackoffMs), undefined, { signal: this.wakeBackoff.signal }).catch(() => undefined);
        this.wakeBackoff = null;
        if (!this.wanted()) return;
      }
      let conn: ChannelModel;
      try {
        conn = await this.connectOnce();
      } catch (err) {
        this.lastError = err;
        continue;
      }
      if (this.closed) {
        await conn.close().catch(() => undefined);
        return;
      }
      const generation = this.generation + 1;
      let lost = false;
      conn.on('error', (err: unknown) => {
        this.lastError = err;
      });
      conn.on('blocked', (reason: unknown) => {
        this.blockedReason = typeof reason === 'string' ? reason : '';
      });
      conn.on('unblocked', () => {
        this.blockedReason = null;
      });
      conn.on('close', () => {
        lost = true;
        this.blockedReason = null;
        if (this.conn !== conn) return;
        this.conn = null;
        for (const hook of this.lostHooks) hook(generation);
        this.kick();
      });
      try {
        for (const hook of this.openHooks) await hook(conn, generation);
      } catch (err) {
        this.lastError = err;
        await conn.close().catch(() => undefined);
        continue;
      }
      if (lost) continue;
      this.generation = generation;
      this.conn = conn;
      this.lastError = null;
      for (const w of this.waiters) {
        clearTimeout(w.timer);
        w.resolve(conn);
      }
      this.waiters.clear();
      return;
    }
  }

  private async connectOnce(): Promise<ChannelModel> {
    const timeoutMs = this.opts.connectTimeoutMs;
    const attempt = amqplib.connect(this.url, {
      noDelay: true,
      timeout: timeoutMs,
      clientProperties: { connection_name: this.opts.connectionName ?? 'asynx' },
    });
    try {
      return await withDeadline(attempt, timeoutMs, () =>
        new BrokerUnavailableError(`Connecting to RabbitMQ at ${redact(this.url)} timed out after ${timeoutMs} ms: check that the broker is running and reachable, or raise connectTimeout (ASYNX_CONNECT_TIMEOUT)`, { facts: { timedOut: true, value: redact(this.url) } }),
      );
    } catch (err) {
      // A connection that opens after we gave up must not leak.
      attempt.then((c) => c.close().catch(() => undefined), () => undefined);
      throw err;
    }
  }

  /**
   * Closes for good: waiters fail, no reconnect. Idempotent (the same promise on every call) and
   * exhaustive: a connection that fails to close still lets the reconnect loop be awaited.
   */
  close(): Promise<void> {
    this.closing ??= this.closeOnce();
    return this.closing;
  }

  private async closeOnce(): Promise<void> {
    this.closed = true;
    this.wakeBackoff?.abort();
    for (const w of this.waiters) {
      clearTimeout(w.timer);
      w.reject(new BrokerUnavailableError(`The AMQP connection to ${redact(this.url)} was closed while waiting for it`));
    }
    this.waiters.clear();
    const conn = this.conn;
    this.conn = null;
    if (conn) await conn.close().catch(() => undefined);
    if (this.loop) await this.loop.catch(() => undefined);
  }
}
