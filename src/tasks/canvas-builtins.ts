// Built-in tasks `celery.starmap` and `celery.chunks`, registered on every app as Celery registers them on
// every app: a worker runs what `task.starmap()` / `task.chunks()` send, from asynx or from Python.

import type { TaskContext } from '../app/context.js';
import type { TaskDefinition } from '../app/execute.js';
import { callInline } from '../app/inline.js';
import { CanvasArgumentError, NotRegistered } from '../errors.js';
import { normalizeSignature } from '../canvas/wire.js';
import type { CanvasApp } from '../canvas/signature.js';
import { CHUNKS_TASK, Chunks, STARMAP_TASK } from '../canvas/starmap.js';
import type { GroupResultTuple } from '../canvas/group-result.js';
import type { Signature } from '../protocol/message.js';

/** What the built-ins need from the app they are registered on. */
export interface BuiltinHost extends CanvasApp {
  task<A extends unknown[], R>(name: string, handler: (this: TaskContext, ...args: A) => R | Promise<R>): unknown;
  getTask(name: string): TaskDefinition | undefined;
}

/** The one error of a built-in called with arguments it cannot use. */
function badCall(ctx: TaskContext, detail: string): CanvasArgumentError {
  return new CanvasArgumentError('asynx.canvas.badBuiltinCall', `${ctx.name}: ${detail}`, { task: ctx.name, taskId: ctx.id });
}

/** Python's binding of positional then keyword arguments to `names`, for a call from any client. */
function bind(ctx: TaskContext, names: readonly string[]): Record<string, unknown> {
  const fail = (message: string) => badCall(ctx, `(${names.join(', ')}) ${message}`);
  if (ctx.args.length > names.length) throw fail(`takes ${names.length} arguments but ${ctx.args.length} were given`);
  const out: Record<string, unknown> = {};
  ctx.args.forEach((v, i) => (out[names[i]!] = v));
  for (const [k, v] of Object.entries(ctx.kwargs)) {
    if (!names.includes(k)) throw fail(`got an unexpected keyword argument '${k}'`);
    if (k in out) throw fail(`got multiple values for argument '${k}'`);
    out[k] = v;
  }
  const missing = names.filter((k) => !(k in out));
  if (missing.length) throw fail(`missing required argument${missing.length > 1 ? 's' : ''} ${missing.map((k) => `'${k}'`).join(', ')}`);
  return out;
}

function innerOf(ctx: TaskContext, v: unknown): Signature {
  const sig = typeof v === 'string' ? normalizeSignature({ task: v }) : normalizeSignature(v);
  if (!sig) throw badCall(ctx, `'task' must be a signature dict with a task name ({"task": "tasks.add", ...}), got ${JSON.stringify(v) ?? String(v)}`);
  return sig;
}

function itemsOf(ctx: TaskContext, v: unknown): unknown[][] {
  if (!Array.isArray(v) || !v.every(Array.isArray)) {
    throw badCall(ctx, `'it' must be a list of argument lists ([[2, 2], [4, 4]]), got ${JSON.stringify(v)?.slice(0, 200) ?? String(v)}`);
  }
  return v as unknown[][];
}

/** Registers `celery.starmap` and `celery.chunks` on `app`. */
export function registerCanvasBuiltins(app: BuiltinHost): void {
  app.task(STARMAP_TASK, async function (this: TaskContext): Promise<unknown[]> {
    const { task, it } = bind(this, ['task', 'it']);
    const inner = innerOf(this, task);
    const items = itemsOf(this, it);
    // Looked up before the first call: an unknown task fails the whole starmap at once (Celery: NotRegistered).
    const def = app.getTask(inner.task);
    if (!def) throw new NotRegistered(inner.task, { taskId: this.id });
    const out: unknown[] = [];
    for (const item of items) out.push(await callInline(def, this, item));
    return out;
  });

  app.task(CHUNKS_TASK, async function (this: TaskContext): Promise<GroupResultTuple> {
    const { task, it, n } = bind(this, ['task', 'it', 'n']);
    const inner = innerOf(this, task);
    const items = itemsOf(this, it);
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 1) {
      throw badCall(this, `'n' must be an integer ≥ 1 (items per chunk), got ${JSON.stringify(n) ?? String(n)}`);
    }
    const chunks = new Chunks<unknown>(app, inner, items, n, { parentId: this.id, rootId: this.rootId });
    return (await chunks.applyAsync()).asTuple();
  });
}
