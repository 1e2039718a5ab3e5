// Runs a registered task's handler inside another running task (Celery's direct call `task(*args)`), as the
// built-in `celery.starmap` does for each item: same pool slot, same message, no result of its own.

import { UsageError } from '../errors.js';
import { runWithContext, type TaskContext } from './context.js';
import { handlerArgs, type TaskDefinition } from './execute.js';

/**
 * Calls `def`'s handler with `args` / `kwargs` under a context derived from `outer` (the running task): the
 * outer id, root, parent, hostname, AbortSignal and updateState, with the inner name, args and kwargs, so
 * `currentTask()` works inside it. The outer task's soft time limit covers the call. `ctx.retry()` cannot
 * requeue one inline call: it throws the error it was given, or UsageError `asynx.task.inlineRetry`.
 * Resolves to the handler's value (`undefined` as null); rejects with what the handler throws.
 */
export async function callInline(def: TaskDefinition, outer: TaskContext, args: unknown[], kwargs: Record<string, unknown> = {}): Promise<unknown> {
  const ctx: TaskContext = {
    id: outer.id,
    name: def.name,
    retries: outer.retries,
    args,
    kwargs,
    signal: outer.signal,
    rootId: outer.rootId,
    parentId: outer.parentId,
    hostname: outer.hostname,
    scheduledAt: outer.scheduledAt,
    group: outer.group,
    groupIndex: outer.groupIndex,
    retry(ro = {}): never {
      if (ro.error !== undefined) throw ro.error;
      throw new UsageError('asynx.task.inlineRetry', `Task '${def.name}' called retry() while it ran inline in '${outer.name}' (${outer.id}): one inline call cannot be retried on its own; throw instead, or send the calls as a group (group(argLists.map((a) => task.s(...a))))`, { task: def.name, taskId: outer.id });
    },
    updateState: (state, meta) => outer.updateState(state, meta),
  };
  const value = await runWithContext(ctx, () => def.handler.apply(ctx, handlerArgs(args, kwargs) as never[]));
  return value === undefined ? null : value;
}
