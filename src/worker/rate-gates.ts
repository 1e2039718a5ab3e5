// Rate limits in the worker: one token bucket of capacity 1 per task name (Celery's), local or shared through the broker.

import { RATE_LIMIT_HEADER, resolveRateLimit, type ResolvedRateLimit } from '../app/rate-limit.js';
import type { Pending } from './pending.js';
import type { TaskLimits } from './task-limits.js';

/** The limit one waiting task is under: which bucket, how fast, shared or not. */
export interface AppliedLimit {
  /** Bucket key: the task name, or name + rate for a per-call limit (one bucket per distinct call rate). */
  key: string;
  intervalMs: number;
  global: boolean;
}

interface Gate {
  /** Local bucket: epoch ms when the next start may happen. Global: the last known value from the store. */
  nextAt: number;
  /** Global: a token taken from the shared bucket and not used yet. */
  permit: boolean;
  /** Global: a take is in flight. */
  taking: boolean;
  timer: NodeJS.Timeout | null;
  /**
   * Etas given to messages handed back to the broker, still ahead: they count as waiting before the next
   * one. Only future ones count, so an estimate that ran ahead of reality (a message came back late, or
   * another node took it) stops pushing later etas out once its time has passed.
   */
  etas: number[];
}

/** Takes a token from a bucket shared by every node (resolves to 0 when taken, else ms to wait). */
export type SharedBucket = (key: string, intervalMs: number) => Promise<number>;

/**
 * Which tasks may start now under their rate limit. Precedence, as for time limits: the message's own
 * (per call, header `asynx_rate_limit`), then `rate_limit` by remote control, then the task's `rateLimit`.
 * A gate that says "not yet" arms a timer and calls `wake` when a token is due, so nothing polls.
 */
export class RateGates {
  private readonly gates = new Map<string, Gate>();
  private closed = false;

  constructor(
    private readonly limits: TaskLimits,
    /** The shared bucket of the broker, or null when it has none (RabbitMQ: global limits are refused at start). */
    private readonly shared: SharedBucket | null,
    private readonly wake: () => void,
    private readonly onError: (message: string) => void,
  ) {}

  /** The limit `p` waits on, or null when it may start at once. */
  limitOf(p: Pending): AppliedLimit | null {
    const name = p.req.task;
    const own = p.req.headers[RATE_LIMIT_HEADER];
    if (own !== undefined && own !== null) {
      const r = this.fromHeader(own);
      if (r) return this.applied(`${name}@${r.text}${r.global ? '@global' : ''}`, r);
    }
    const override = this.limits.rateOverride(name);
    if (override === null) return null;
    const task = p.def.options.rateLimit;
    if (override !== undefined) {
      const r = resolveRateLimit('rate_limit', override);
      return r ? this.applied(name, { ...r, global: task?.global ?? false }) : null;
    }
    return task ? this.applied(name, task) : null;
  }

  private fromHeader(v: unknown): ResolvedRateLimit | null {
    try {
      return resolveRateLimit('header', v as never);
    } catch {
      return null; // a malformed header from another client: the task's own limit applies
    }
  }

  private applied(key: string, r: ResolvedRateLimit): AppliedLimit {
    return { key, intervalMs: 1000 / r.perSecond, global: r.global && this.shared !== null };
  }

  private gate(key: string): Gate {
    let g = this.gates.get(key);
    if (!g) {
      g = { nextAt: 0, permit: false, taking: false, timer: null, etas: [] };
      this.gates.set(key, g);
    }
    return g;
  }

  /** True when a task under `limit` may start now (its token is taken); otherwise a wake-up is armed. */
  tryStart(limit: AppliedLimit): boolean {
    const g = this.gate(limit.key);
    const now = Date.now();
    if (!limit.global) {
      if (now >= g.nextAt) {
        g.nextAt = now + limit.intervalMs;
        return true;
      }
      this.arm(g, g.nextAt - now);
      return false;
    }
    if (g.permit) {
      g.permit = false;
      return true;
    }
    if (!g.taking && !g.timer) this.take(limit, g);
    return false;
  }

  private take(limit: AppliedLimit, g: Gate): void {
    g.taking = true;
    this.shared!(limit.key, limit.intervalMs)
      .then((waitMs) => {
        g.taking = false;
        if (this.closed) return;
        if (waitMs <= 0) {
          g.permit = true;
          g.nextAt = Date.now() + limit.intervalMs;
          this.wake();
        } else {
          g.nextAt = Date.now() + waitMs;
          this.arm(g, waitMs);
        }
      })
      .catch((err) => {
        g.taking = false;
        this.onError(`Taking a token of the global rate limit '${limit.key}' failed (retrying in 1 s): ${(err as Error).message}`);
        this.arm(g, 1000);
      });
  }

  private arm(g: Gate, ms: number): void {
    if (g.timer || this.closed) return;
    g.timer = setTimeout(() => {
      g.timer = null;
      this.wake();
    }, Math.max(1, Math.ceil(ms)));
    g.timer.unref();
  }

  /**
   * When a task under `limit` would start if `ahead` tasks of the same bucket wait before it here:
   * the bucket's next token plus one interval per task ahead (an estimate for a global bucket).
   */
  projectedStart(limit: AppliedLimit, ahead: number): number {
    const g = this.gate(limit.key);
    return Math.max(Date.now(), g.nextAt) + ahead * limit.intervalMs;
  }

  /** The eta for a task handed back to the broker: after every task of its bucket waiting here or handed back and not due yet. */
  handBackEta(limit: AppliedLimit, ahead: number): number {
    const g = this.gate(limit.key);
    const now = Date.now();
    if (g.etas.length && g.etas[0]! <= now) g.etas = g.etas.filter((t) => t > now);
    const eta = this.projectedStart(limit, ahead + g.etas.length);
    g.etas.push(eta);
    return eta;
  }

  /**
   * `rate_limit` changed the task's rate: its bucket starts afresh (Celery makes a new full bucket), so the
   * next start may happen now and later ones follow the new rate. Waiting tasks are looked at again.
   */
  rateChanged(task: string): void {
    const g = this.gates.get(task);
    if (g) {
      if (g.timer) clearTimeout(g.timer);
      g.timer = null;
      g.nextAt = 0;
      g.etas = [];
    }
    this.wake();
  }

  /** Clears the timers (the worker stops). */
  close(): void {
    this.closed = true;
    for (const g of this.gates.values()) if (g.timer) clearTimeout(g.timer);
  }
}
