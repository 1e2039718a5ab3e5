// Idempotent, exhaustive shutdown: cleanup steps registered at creation, run last-in first-out, once.

/** A named cleanup step. */
export interface CleanupStep {
  name: string;
  run: () => void | Promise<void>;
}

/**
 * Cleanup registered as resources are created, run in reverse order by {@link Releasers.close}.
 * `close()` returns the same promise every time (idempotent) and runs every step even when one
 * fails (exhaustive); the failures are reported once, to `onError`, and never skip a later step.
 */
export class Releasers {
  private readonly steps: CleanupStep[] = [];
  private closing: Promise<void> | null = null;

  constructor(private readonly onError?: (step: string, error: unknown) => void) {}

  /** Registers a step; steps run last-in first-out. Registering after close() started runs it at once. */
  add(name: string, run: () => void | Promise<void>): void {
    if (this.closing) {
      void this.closing.then(() => this.runOne({ name, run }));
      return;
    }
    this.steps.push({ name, run });
  }

  /** True once close() has been called. */
  get closed(): boolean {
    return this.closing !== null;
  }

  /** Runs every step once, newest first; the same promise on every call; never rejects. */
  close(): Promise<void> {
    if (!this.closing) this.closing = this.runAll();
    return this.closing;
  }

  private async runAll(): Promise<void> {
    while (this.steps.length) await this.runOne(this.steps.pop()!);
  }

  private async runOne(step: CleanupStep): Promise<void> {
    try {
      await step.run();
    } catch (err) {
      this.onError?.(step.name, err);
    }
  }
}
