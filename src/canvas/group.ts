// group([...]): signatures sent at once, each with the headers group=<gid> and group_index=i; a GroupResult follows them.

import { randomUUID } from 'node:crypto';
import { UsageError } from '../errors.js';
import type { SendOptions } from '../app/call-options.js';
import { GroupResult } from './group-result.js';
import { TaskSignature, type CanvasApp, type SignatureCallOptions } from './signature.js';
import { mergeArgs } from './wire.js';

/** Options of {@link Group.applyAsync}: partial args for every member, and call options for every member. */
export interface GroupCallOptions extends Omit<SignatureCallOptions, 'taskId' | 'group' | 'groupIndex'> {
  /** The group id. @defaultValue a random UUID */
  groupId?: string;
}

/**
 * Signatures sent in parallel. On the wire each member carries Celery's `group` and `group_index` headers, and
 * its stored result records the `group_id`. {@link Group.applyAsync} returns a {@link GroupResult} whose
 * `get()` gives the results in member order.
 *
 * @typeParam R - the members' result type
 * @see celery/canvas.py `group._freeze_group_tasks`
 */
export class Group<R = unknown> {
  readonly tasks: ReadonlyArray<TaskSignature<R>>;

  constructor(
    tasks: ReadonlyArray<TaskSignature<R>>,
    /** @internal The app to send with when there is no member to take it from (`task.chunks([], n)`). */
    private readonly app?: CanvasApp,
  ) {
    if (!Array.isArray(tasks)) throw new UsageError('asynx.canvas.badGroup', 'group() takes a list of signatures: group([add.s(1, 2), add.s(3, 4)])');
    for (const t of tasks) {
      if (!(t instanceof TaskSignature)) {
        const kind = typeof t === 'object' && t !== null ? ((t as object).constructor?.name ?? 'object') : typeof t;
        const hint = kind === 'Chain' || kind === 'Group' ? `: a ${kind.toLowerCase()} inside a group is not supported; send it on its own (its result is a separate AsyncResult)` : '';
        throw new UsageError('asynx.canvas.badMember', `group(): every member must be a signature (task.s(), task.si()), got ${kind}${hint}`, { value: String(t) });
      }
    }
    this.tasks = tasks;
  }

  /** @internal Sends every member with group headers (and, for a chord header, `embed.chord`). */
  async publish(app: CanvasApp, opts: GroupCallOptions, extra: (i: number) => SendOptions = () => ({})): Promise<GroupResult<R>> {
    const { args, kwargs, groupId, ...rest } = opts;
    const gid = groupId ?? randomUUID();
    const frozen = this.tasks.map((t) => t.freeze());
    for (const [i, t] of frozen.entries()) {
      await app.send(t.task, mergeArgs(t, args ?? []), { ...t.kwargs, ...kwargs }, { ...t.callOptions, ...rest, group: gid, groupIndex: i, ...extra(i) });
    }
    return new GroupResult<R>(app, gid, frozen.map((t) => app.AsyncResult<R>(t.id!)));
  }

  /**
   * Sends every member; `args` go before each member's own (unless immutable), options apply to each. An
   * empty `task.chunks([], n)` resolves to an empty GroupResult (`get()` gives `[]`, as in Celery); `group([])`
   * has no app to send with and rejects with UsageError `asynx.canvas.emptyGroup`.
   */
  async applyAsync(opts: GroupCallOptions = {}): Promise<GroupResult<R>> {
    const app = this.tasks[0]?.app ?? this.app;
    if (!app) throw new UsageError('asynx.canvas.emptyGroup', 'group([]) has no members, so no app to send with: give at least one signature, or use task.chunks(argLists, n), which may be empty');
    return this.publish(app, opts);
  }

  /** Sends every member with partial args. */
  delay(...args: unknown[]): Promise<GroupResult<R>> {
    return this.applyAsync({ args });
  }
}

/** The result type of each member of a list of signatures, as a union (`number | string`). */
export type MemberResult<S> = S extends TaskSignature<infer R> ? R : never;

/**
 * Builds a group: `group([add.s(1, 2), add.s(3, 4)])`; `(await g.applyAsync()).get()` gives `[3, 7]`. Members
 * may be different tasks, as in Celery: `group([add.s(1, 1), concat.s('a', 'b')])` is a `Group<number | string>`.
 */
export function group<const S extends ReadonlyArray<TaskSignature<unknown>>>(tasks: S): Group<MemberResult<S[number]>> {
  return new Group<MemberResult<S[number]>>(tasks as unknown as ReadonlyArray<TaskSignature<MemberResult<S[number]>>>);
}
