// Event-loop lag probe: a cheap timer that notices, after the fact, that the worker's loop was blocked.

/** What {@link watchLoopLag} needs. */
export interface LoopLagWatch {
  /** Report a block at least this long. */
  thresholdMs: number;
  /** The loop was blocked for at least `blockedMs` (called on the first tick after the block). */
  onBlocked(blockedMs: number): void;
  /** Every tick, after `onBlocked` when there was one (the in-process pools forget their ended tasks here). */
  onTick?(): void;
}

/** Probe period: a quarter of the threshold (so a block is measured to within 25 %), 20–250 ms. */
export function probeIntervalMs(thresholdMs: number): number {
  return Math.min(250, Math.max(20, Math.floor(thresholdMs / 4)));
}

/**
 * Starts the probe: an unref'd interval timer whose lateness is the time the loop could not run it.
 * A tick due at T that runs at T + L means the loop was busy for at least L (a CPU loop, sync I/O, a long
 * GC pause, or the process being stopped). Costs one timer callback every {@link probeIntervalMs} (four
 * a second at the 1 s default): nothing on the task hot path. Returns the function that stops it.
 *
 * A block is reported once it ended, never while it lasts: a blocked loop runs no JavaScript. (A watchdog
 * thread could notice it live, but it costs a V8 isolate — several MB of RSS — and would write outside the
 * worker's logger; the after-the-fact report names the same tasks.)
 */
export function watchLoopLag(w: LoopLagWatch): () => void {
  const interval = probeIntervalMs(w.thresholdMs);
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    const late = now - last - interval;
    last = now;
    if (late >= w.thresholdMs) w.onBlocked(Math.round(late));
    w.onTick?.();
  }, interval);
  timer.unref();
  return () => clearInterval(timer);
}
