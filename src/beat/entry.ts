// One periodic entry (`app.periodic()` or the config file's `periodic` section), checked once.

import { badPeriodicOption, duplicatePeriodicError } from './beat-errors.js';
import { resolveSchedule, type PeriodicSchedule, type ResolvedSchedule } from './schedule.js';

/**
 * What to do with due times missed while no scheduler ran (downtime, or the gap of a leader takeover),
 * decided when a scheduler becomes the leader:
 * - `'none'`: skip them all; the next run is the next due time from now.
 * - `'latest'`: send the most recent missed one, once (Celery beat's behaviour).
 * - `'all'`: send each missed due time, oldest first (at most {@link MAX_CATCH_UP} per entry).
 */
export type CatchUp = 'none' | 'latest' | 'all';

/** Most missed due times one entry sends at once under `catchUp: 'all'` (older ones are skipped and logged). */
export const MAX_CATCH_UP = 100;

/** Options of {@link Asynx.periodic}: what each run sends. */
export interface PeriodicOptions {
  /** Positional arguments of each call. @defaultValue `[]` */
  args?: unknown[];
  /** Keyword arguments of each call. @defaultValue `{}` */
  kwargs?: Record<string, unknown>;
  /** Call options of each send (`queue`, `priority`, `expires`, …; not `taskId`, `eta` or `countdown`). @defaultValue `{}` */
  options?: Record<string, unknown>;
  /** Missed runs after downtime, see {@link CatchUp}. @defaultValue `'latest'` */
  catchUp?: CatchUp;
}

/** An entry as written in the config file's `periodic` section: `{ task, schedule, args?, kwargs?, options?, catchUp? }`. */
export interface PeriodicConfigEntry extends PeriodicOptions {
  /** Task name. */
  task: string;
  schedule: PeriodicSchedule;
}

/** A checked entry. */
export interface PeriodicEntry {
  readonly name: string;
  readonly task: string;
  readonly schedule: ResolvedSchedule;
  readonly args: unknown[];
  readonly kwargs: Record<string, unknown>;
  readonly options: Record<string, unknown>;
  readonly catchUp: CatchUp;
}

const CATCH_UPS: readonly CatchUp[] = ['none', 'latest', 'all'];
/** Call options that would make every run the same message, or not run when due. */
const FORBIDDEN_OPTIONS = ['taskId', 'eta', 'countdown'];

/** Checks one entry; throws UsageError `asynx.periodic.badOption` naming the entry and the option. */
export function resolvePeriodicEntry(name: unknown, schedule: unknown, task: unknown, opts: unknown = {}): PeriodicEntry {
  if (typeof name !== 'string' || name.trim() === '') throw badPeriodicOption(String(name), 'name', name, 'must be a non-empty string');
  if (typeof task !== 'string' || task === '') throw badPeriodicOption(name, 'task', task, 'must be a task (from app.task()) or a task name');
  if (typeof opts !== 'object' || opts === null || Array.isArray(opts)) throw badPeriodicOption(name, 'options', opts, 'must be an object { args, kwargs, options, catchUp }');
  const o = opts as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (!['args', 'kwargs', 'options', 'catchUp', 'task', 'schedule'].includes(key)) throw badPeriodicOption(name, key, o[key], 'is not a periodic option (args, kwargs, options, catchUp)');
  }
  const args = o.args ?? [];
  if (!Array.isArray(args)) throw badPeriodicOption(name, 'args', args, 'must be an array');
  const kwargs = o.kwargs ?? {};
  if (typeof kwargs !== 'object' || kwargs === null || Array.isArray(kwargs)) throw badPeriodicOption(name, 'kwargs', kwargs, 'must be an object');
  const options = o.options ?? {};
  if (typeof options !== 'object' || options === null || Array.isArray(options)) throw badPeriodicOption(name, 'options', options, 'must be an object of call options');
  for (const key of FORBIDDEN_OPTIONS) {
    if ((options as Record<string, unknown>)[key] !== undefined) throw badPeriodicOption(name, `options.${key}`, (options as Record<string, unknown>)[key], 'cannot be set on a periodic entry (each run is its own task, sent when due)');
  }
  const catchUp = o.catchUp ?? 'latest';
  if (!CATCH_UPS.includes(catchUp as CatchUp)) throw badPeriodicOption(name, 'catchUp', catchUp, `must be one of ${CATCH_UPS.join(', ')}`);
  return {
    name,
    task,
    schedule: resolveSchedule(name, schedule),
    args: [...args],
    kwargs: { ...(kwargs as Record<string, unknown>) },
    options: { ...(options as Record<string, unknown>) },
    catchUp: catchUp as CatchUp,
  };
}

/** Checks the config file's `periodic` section (`{ name: { task, schedule, … } }`). */
export function periodicFromConfig(section: unknown): PeriodicEntry[] {
  if (section === undefined || section === null) return [];
  if (typeof section !== 'object' || Array.isArray(section)) throw badPeriodicOption('(config)', 'periodic', section, 'must be an object { entryName: { task, schedule, args?, kwargs?, options?, catchUp? } }');
  return Object.entries(section as Record<string, unknown>).map(([name, raw]) => {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw badPeriodicOption(name, 'entry', raw, 'must be an object { task, schedule, … }');
    const r = raw as Record<string, unknown>;
    return resolvePeriodicEntry(name, r.schedule, r.task, r);
  });
}

/** The entries of the app and of the config file, by name; the config file's entry wins over the app's of the same name. */
export function mergeEntries(fromApp: Iterable<PeriodicEntry>, fromConfig: PeriodicEntry[]): PeriodicEntry[] {
  const byName = new Map<string, PeriodicEntry>();
  for (const e of fromApp) byName.set(e.name, e);
  for (const e of fromConfig) byName.set(e.name, e);
  return [...byName.values()].sort((a, b) => a.name.localeCompare(b.name));
}

/** Throws `asynx.periodic.duplicate` when `name` is taken. */
export function assertNewEntry(names: { has(name: string): boolean }, name: string): void {
  if (names.has(name)) throw duplicatePeriodicError(name);
}
