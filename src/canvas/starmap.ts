// starmap and chunks: many calls of one task in one message (`celery.starmap`), or split into n-sized
// starmap messages sent as a group (`celery.chunks`). Wire form as Celery 5 builds it; workers run the built-ins.

import { UsageError } from '../errors.js';
import type { Signature } from '../protocol/message.js';
import { Group, type GroupCallOptions } from './group.js';
import type { GroupResult, GroupResultTuple } from './group-result.js';
import { TaskSignature, type CanvasApp, type SignatureOptions } from './signature.js';

/** Name of Celery's built-in task that runs `task(*item)` for each item of `it` in one message. */
export const STARMAP_TASK = 'celery.starmap';
/** Name of Celery's built-in task that splits `it` into chunks of `n` and sends them as a group of starmaps. */
export const CHUNKS_TASK = 'celery.chunks';

/** The inner task as Celery writes it in the built-ins' `task` kwarg: `task.s()`, a signature without args. */
export function bareSignature(task: string): Signature {
  return { task, args: [], kwargs: {}, options: {}, subtask_type: null, immutable: false };
}

function badArgLists(where: string, detail: string, value: unknown): UsageError {
  return new UsageError('asynx.canvas.badArgLists', `${where}: ${detail}`, { value: String(value) });
}

function argLists(where: string, it: unknown): unknown[][] {
  if (!Array.isArray(it)) throw badArgLists(where, 'argLists must be an array of argument arrays, e.g. [[1, 2], [3, 4]]', it);
  for (const item of it) {
    if (!Array.isArray(item)) throw badArgLists(where, `every item of argLists must be an array of arguments (give [[x]] for one argument), got ${JSON.stringify(item) ?? String(item)}`, item);
  }
  return it.map((item: unknown[]) => [...item]);
}

/** `items` split into consecutive lists of `n` (the last may be shorter), as Celery's `chunks(it, n)` does. */
export function splitChunks<T>(items: readonly T[], n: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += n) out.push(items.slice(i, i + n));
  return out;
}

/**
 * The task name whose options route a message of `name`: for `celery.starmap`, the inner task's (Celery's
 * `route_name`), so the calls go to the queue their task is defined with; else `name` itself.
 */
export function routeName(name: string, kwargs: Record<string, unknown>): string {
  if (name !== STARMAP_TASK) return name;
  const inner = kwargs.task;
  if (typeof inner === 'string') return inner;
  const task = typeof inner === 'object' && inner !== null ? (inner as { task?: unknown }).task : undefined;
  return typeof task === 'string' && task !== '' ? task : name;
}

/**
 * A signature of `celery.starmap` (Celery's `xstarmap`): one message whose worker calls `task(...item)` for
 * every item, in that one task, and stores the list of their values. Immutable, as in Celery: partial args
 * given to `applyAsync()` are not added. When sent, it goes to the inner task's `queue` if the app defines
 * the task with one (see {@link routeName}), unless `options` or the call give a queue.
 */
export function starmapSignature<R>(app: CanvasApp, task: string | Signature, items: ReadonlyArray<ReadonlyArray<unknown>>, options: SignatureOptions = {}): TaskSignature<R[]> {
  const inner = typeof task === 'string' ? bareSignature(task) : task;
  return new TaskSignature<R[]>(app, STARMAP_TASK, [], { task: inner, it: argLists(`${inner.task}.starmap()`, items) }, options, true);
}

/**
 * Celery's `task.chunks(it, n)`: the argument lists split into chunks of `n`, each chunk one `celery.starmap`
 * message; {@link Chunks.applyAsync} sends them as a group and its GroupResult's `get()` gives one list of
 * results per chunk (`R[][]`). {@link Chunks.signature} is the `celery.chunks` signature instead, for a
 * worker to split and send (a link, or a client in another language).
 *
 * @typeParam R - the inner task's result type
 * @see celery/canvas.py `chunks`, celery/app/builtins.py `celery.chunks`
 */
export class Chunks<R = unknown> {
  /** The inner task's bare signature (Celery's `kwargs.task`). */
  readonly task: Signature;
  /** Every argument list, before splitting. */
  readonly it: unknown[][];

  constructor(
    /** @internal */ private readonly app: CanvasApp,
    task: string | Signature,
    it: ReadonlyArray<ReadonlyArray<unknown>>,
    /** Items per chunk: an integer ≥ 1. */
    readonly n: number,
    /** Call options of every chunk's message. */
    private readonly options: SignatureOptions = {},
  ) {
    this.task = typeof task === 'string' ? bareSignature(task) : task;
    this.it = argLists(`${this.task.task}.chunks()`, it);
    if (!Number.isInteger(n) || n < 1) throw new UsageError('asynx.canvas.badChunkSize', `${this.task.task}.chunks(argLists, n): n must be an integer ≥ 1 (items per message), got ${String(n)}`, { value: String(n) });
  }

  /** The group of `celery.starmap` signatures, one per chunk, in order (Celery's `chunks.group()`). */
  group(): Group<R[]> {
    return new Group<R[]>(splitChunks(this.it, this.n).map((part) => starmapSignature<R>(this.app, this.task, part, this.options)), this.app);
  }

  /** Sends every chunk as one group; `get()` on the result gives `R[][]` (an empty `it` gives `[]`). */
  applyAsync(opts: GroupCallOptions = {}): Promise<GroupResult<R[]>> {
    return this.group().applyAsync(opts);
  }

  /** Sends every chunk as one group (no partial args: chunk signatures are immutable). */
  delay(): Promise<GroupResult<R[]>> {
    return this.applyAsync();
  }

  /**
   * The `celery.chunks` signature: a worker (asynx or Celery) splits `it` and sends the group itself, and
   * stores the GroupResult it sent as its result, in Celery's tuple form ({@link GroupResult.fromTuple} reads it).
   */
  signature(options: SignatureOptions = {}): TaskSignature<GroupResultTuple> {
    return new TaskSignature<GroupResultTuple>(this.app, CHUNKS_TASK, [], { task: this.task, it: this.it, n: this.n }, options, true);
  }

  /** Celery's `chunks` signature dict. */
  toJSON(): Signature {
    return this.signature().toJSON();
  }
}
