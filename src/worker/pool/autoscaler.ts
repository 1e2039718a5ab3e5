// Autoscale (`--autoscale=max,min`): Celery's rule as a pure decision, and the timer that applies it to the worker's pool.

/** What one autoscale decision looks at. */
export interface ScaleInput {
  /** Pool size now (Celery's `processes`). */
  size: number;
  /** Tasks reserved or running, eta-waiting ones excluded (Celery's `qty`, `len(reserved_requests)`). */
  qty: number;
  max: number;
  min: number;
  /** Milliseconds since the pool last grew, or null if it never did. */
  sinceGrowMs: number | null;
  keepaliveMs: number;
}

/** Grow or shrink the pool by `n`, or leave it (`hold`: it is too big, but grew less than a keepalive ago). */
export type ScaleDecision = { action: 'grow'; n: number } | { action: 'shrink'; n: number } | { action: 'hold' } | { action: 'none' };

/**
 * Celery's `Autoscaler._maybe_scale`: when `qty` exceeds the pool, grow at once to `min(qty, max)` (to `min` at
 * least, which Celery's `update` does at once: here also when the pool could not be resized then); when the
 * pool is bigger than `max(qty, min)`, shrink to that, but only once the keepalive has passed since the
 * pool last grew (bursts do not make the pool flap). At least one process or thread always stays.
 * Unlike Celery, which never shrinks a pool its autoscaler did not grow itself, any growth (a scale-up,
 * `pool_grow`, a raised `min`) starts the keepalive, and a pool that never grew may shrink after it too.
 */
export function decideScale(i: ScaleInput): ScaleDecision {
  // A pool below min (min raised while it could not be resized: a HUP restart draining) grows to min too.
  const up = Math.max(Math.min(i.qty, i.max), i.min);
  if (up > i.size) return { action: 'grow', n: up - i.size };
  const down = Math.max(i.qty, i.min, 1);
  if (down >= i.size) return { action: 'none' };
  if (i.sinceGrowMs !== null && i.sinceGrowMs < i.keepaliveMs) return { action: 'hold' };
  return { action: 'shrink', n: i.size - down };
}

/** Celery's autoscaler `info()`, shown under `autoscaler` in `inspect stats`. */
export interface AutoscalerInfo {
  max: number;
  min: number;
  current: number;
  qty: number;
}

/** What the autoscaler needs from the worker. */
export interface AutoscaleHooks {
  /** The pool size now, or null when the pool must not be resized (starting, draining, between pools). */
  size(): number | null;
  /** Tasks reserved or running. */
  qty(): number;
  /** Grows (n > 0) or shrinks (n < 0) the pool; returns at once. */
  resize(n: number): void;
  /** `max` changed: prefetch follows it (Celery's prefetch under autoscale is max × multiplier). */
  maxChanged(max: number): void;
}

/**
 * Applies {@link decideScale} every second (or every keepalive when that is shorter) and whenever a task
 * becomes due ({@link Autoscaler.poke}), and answers the `autoscale`, `pool_grow` and `pool_shrink` commands.
 */
export class Autoscaler {
  private lastGrowAt: number | null = null;
  private timer: NodeJS.Timeout | null = null;
  private poked = false;

  constructor(
    public max: number,
    public min: number,
    readonly keepaliveMs: number,
    private readonly hooks: AutoscaleHooks,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Starts the periodic check. Idempotent. */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.tick(), Math.max(50, Math.min(1000, this.keepaliveMs)));
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** A task became due: check soon (coalesced, so a burst of deliveries makes one check). */
  poke(): void {
    if (this.poked || !this.timer) return;
    this.poked = true;
    setImmediate(() => {
      this.poked = false;
      this.tick();
    });
  }

  /** One decision, applied. */
  tick(): ScaleDecision {
    const size = this.hooks.size();
    if (size === null) return { action: 'none' };
    const d = decideScale({ size, qty: this.hooks.qty(), max: this.max, min: this.min, sinceGrowMs: this.lastGrowAt === null ? null : this.now() - this.lastGrowAt, keepaliveMs: this.keepaliveMs });
    if (d.action === 'grow') this.grow(d.n);
    else if (d.action === 'shrink') this.hooks.resize(-d.n);
    return d;
  }

  /**
   * `autoscale max min` (Celery's `Autoscaler.update`): a lower max shrinks the pool to it at once, a
   * higher min grows it to that at once; either may be left out. Returns the bounds now in force.
   */
  update(max: number | null, min: number | null): [number, number] {
    const size = this.hooks.size();
    if (max !== null) {
      if (size !== null && max < size) this.hooks.resize(-(size - max));
      const changed = max !== this.max;
      this.max = max;
      if (changed) this.hooks.maxChanged(max);
    }
    if (min !== null) {
      const now = this.hooks.size();
      if (now !== null && min > now) this.grow(min - now);
      this.min = min;
    }
    return [this.max, this.min];
  }

  /** `pool_grow` under autoscale (Celery 5.2's `force_scale_up`): grows now, raising max if it must. */
  forceScaleUp(n: number): void {
    const size = this.hooks.size();
    if (size === null || n <= 0) return;
    if (size + n > this.max) {
      this.max = size + n;
      this.hooks.maxChanged(this.max);
    }
    this.grow(n);
  }

  /** `pool_shrink` under autoscale (Celery's `force_scale_down`): shrinks now, lowering min if it must. */
  forceScaleDown(n: number): void {
    const size = this.hooks.size();
    if (size === null || n <= 0) return;
    const target = size - n;
    if (target < this.min) this.min = Math.max(target, 0);
    this.hooks.resize(-Math.min(n, size));
  }

  info(): AutoscalerInfo {
    return { max: this.max, min: this.min, current: this.hooks.size() ?? 0, qty: this.hooks.qty() };
  }

  private grow(n: number): void {
    this.lastGrowAt = this.now();
    this.hooks.resize(n);
  }
}
