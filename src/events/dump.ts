// One text line per event, as `celery events --dump` prints them: `hostname [ts] type: k=v, …`.

import type { CeleryEvent } from './event.js';
import { pyDisplay } from '../protocol/saferepr.js';

/** The dumper's names for worker events; other types print with dashes turned to spaces. */
const HUMAN_TYPES: Record<string, string> = { 'worker-offline': 'shutdown', 'worker-online': 'started', 'worker-heartbeat': 'heartbeat' };

/** Python's `str(datetime.utcfromtimestamp(ts))`: `2026-12-01 14:05:03.120000`, without the fraction when it is zero. */
export function utcText(ts: number): string {
  const whole = Math.floor(ts);
  const micro = Math.round((ts - whole) * 1e6);
  const [s, us] = micro >= 1_000_000 ? [whole + 1, 0] : [whole, micro];
  const base = new Date(s * 1000).toISOString().slice(0, 19).replace('T', ' ');
  return us ? `${base}.${String(us).padStart(6, '0')}` : base;
}

/** Paints parts of a line (identity when colour is off). */
export interface DumpPaint {
  host: (s: string) => string;
  type: (s: string) => string;
}

const PLAIN: DumpPaint = { host: (s) => s, type: (s) => s };

/** Formats events as Celery's Dumper does; remembers task names by uuid (from task-received / task-sent) for later lines. */
export class EventDumper {
  private readonly names = new Map<string, string>();

  constructor(private readonly paint: DumpPaint = PLAIN) {}

  /** The line for one event. */
  line(event: CeleryEvent): string {
    const { timestamp, type: rawType, hostname, ...rest } = event;
    const type = String(rawType).toLowerCase();
    const ts = utcText(Number(timestamp));
    const fields = (o: Record<string, unknown>): string =>
      Object.keys(o)
        .sort()
        .map((k) => `${k}=${pyDisplay(o[k])}`)
        .join(', ');
    const human = HUMAN_TYPES[type] ?? type.replace(/-/g, ' ');
    const head = `${this.paint.host(String(hostname))} [${ts}] ${this.paint.type(human)}`;
    if (!type.startsWith('task-')) {
      const f = fields(rest);
      return `${head}${f ? ':' : ''} ${f}`;
    }
    const { uuid, ...others } = rest as Record<string, unknown>;
    const id = String(uuid);
    let task = this.names.get(id) ?? '';
    let left: Record<string, unknown> = others;
    if (type === 'task-received' || type === 'task-sent') {
      const { name, args, kwargs, ...remaining } = others;
      task = `${pyDisplay(name)}(${id}) args=${pyDisplay(args)} kwargs=${pyDisplay(kwargs)}`;
      this.remember(id, task);
      left = remaining;
    }
    const f = fields(left);
    return `${head}${f ? ':' : ''} ${task} ${f}`;
  }

  private remember(id: string, task: string): void {
    this.names.set(id, task);
    // Celery's LRU holds 4095 names.
    if (this.names.size > 0xfff) this.names.delete(this.names.keys().next().value!);
  }
}
