// What the dashboard's charts draw: tasks succeeded / failed / retried per minute, and queue lengths over time.

/** One minute of task outcomes. `minute` is the start of the minute, ms since the epoch. */
export interface MinuteCounts {
  minute: number;
  succeeded: number;
  failed: number;
  retried: number;
}

/** Queue lengths at one moment (`at`, ms since the epoch); a queue that could not be counted is null. */
export interface QueueSample {
  at: number;
  lengths: Record<string, number | null>;
}

/** The charts' data, as the page receives it. */
export interface HistorySnapshot {
  minutes: MinuteCounts[];
  queues: QueueSample[];
}

const MINUTE_MS = 60_000;

/** Bounded rolling history: the last `minutes` minutes of outcomes and the last `samples` queue samples. */
export class History {
  private readonly counts = new Map<number, MinuteCounts>();
  private readonly samples: QueueSample[] = [];
  private readonly keepMinutes: number;
  private readonly keepSamples: number;

  constructor(opts: { minutes?: number; samples?: number } = {}) {
    this.keepMinutes = opts.minutes ?? 60;
    this.keepSamples = opts.samples ?? 360;
  }

  /** Counts one outcome at `atMs` (the event's timestamp). */
  count(kind: 'succeeded' | 'failed' | 'retried', atMs: number): MinuteCounts {
    const minute = Math.floor(atMs / MINUTE_MS) * MINUTE_MS;
    let row = this.counts.get(minute);
    if (!row) {
      row = { minute, succeeded: 0, failed: 0, retried: 0 };
      this.counts.set(minute, row);
      const cutoff = minute - this.keepMinutes * MINUTE_MS;
      for (const m of this.counts.keys()) if (m <= cutoff) this.counts.delete(m);
    }
    row[kind] += 1;
    return { ...row };
  }

  /** Records one queue-length sample. */
  sample(lengths: Record<string, number | null>, at: number): QueueSample {
    const s = { at, lengths: { ...lengths } };
    this.samples.push(s);
    if (this.samples.length > this.keepSamples) this.samples.splice(0, this.samples.length - this.keepSamples);
    return s;
  }

  /** The latest sample, or null before the first. */
  latest(): QueueSample | null {
    return this.samples.at(-1) ?? null;
  }

  snapshot(): HistorySnapshot {
    return { minutes: [...this.counts.values()].sort((a, b) => a.minute - b.minute).map((m) => ({ ...m })), queues: this.samples.map((s) => ({ at: s.at, lengths: { ...s.lengths } })) };
  }
}
