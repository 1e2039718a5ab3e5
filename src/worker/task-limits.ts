// Per task-name rate and time limits set by remote control (`rate_limit`, `time_limit`), as Celery keeps them on the task.

/** Time limits set by `time_limit`, seconds; null means none (they replace the task's own). */
export interface TimeLimits {
  soft: number | null;
  hard: number | null;
}

/**
 * Checks a Celery rate string (`10`, `10/s`, `100/m`, `1000/h`; empty or `0` disables) and returns
 * tasks per second, or an error text phrased as Celery's `rate()` fails.
 */
export function parseRate(text: string): { perSecond: number } | { error: string } {
  const [ops = '', modifier = 's'] = text.split('/', 2);
  const per = ({ s: 1, m: 60, h: 3600 } as Record<string, number>)[modifier || 's'];
  if (per === undefined) return { error: `KeyError('${modifier}')` };
  const n = ops.trim() === '' ? Number.NaN : Number(ops);
  if (!Number.isFinite(n)) return { error: `Invalid rate limit string: ValueError("could not convert string to float: '${ops}'")` };
  return { perSecond: n / per };
}

/**
 * What remote control changed per task name, as Celery changes the task's attributes. The worker's rate
 * gates read {@link TaskLimits.rateOverride} at every start, so a new rate applies to waiting tasks at once;
 * time limits apply to task runs that start afterwards.
 */
export class TaskLimits {
  private readonly rates = new Map<string, string>();
  /** Tasks whose limit was turned off by `rate_limit` with `''` or `0` (it then overrides the task's own). */
  private readonly disabled = new Set<string>();
  private readonly times = new Map<string, TimeLimits>();

  /** Stores a rate limit (`''` or a zero rate turns the task's limit off). */
  setRate(task: string, rate: string): void {
    const r = parseRate(rate);
    if (rate === '' || ('perSecond' in r && r.perSecond === 0)) {
      this.rates.delete(task);
      this.disabled.add(task);
    } else {
      this.rates.set(task, rate);
      this.disabled.delete(task);
    }
  }

  /** The rate limit set for a task, or undefined. */
  rate(task: string): string | undefined {
    return this.rates.get(task);
  }

  /** What remote control says about a task's rate: a rate string, null (turned off), undefined (never set). */
  rateOverride(task: string): string | null | undefined {
    return this.disabled.has(task) ? null : this.rates.get(task);
  }

  setTime(task: string, limits: TimeLimits): void {
    this.times.set(task, limits);
  }

  /** The time limits set for a task, or undefined when remote control never set them. */
  time(task: string): TimeLimits | undefined {
    return this.times.get(task);
  }

  /** Celery's `task_annotations` form: `{task: {rate_limit, soft_time_limit, time_limit}}`. */
  annotations(): Record<string, Record<string, string | number | null>> {
    const out: Record<string, Record<string, string | number | null>> = {};
    for (const [task, rate] of this.rates) out[task] = { rate_limit: rate };
    for (const [task, t] of this.times) out[task] = { ...out[task], soft_time_limit: t.soft, time_limit: t.hard };
    return out;
  }
}
