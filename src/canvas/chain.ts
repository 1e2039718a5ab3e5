// chain(a.s(), b.s(), c.s()): each step gets the previous result; only the first is published, the rest ride in embed.chain.

import { UsageError } from '../errors.js';
import type { AsyncResult } from '../app/result.js';
import type { Signature } from '../protocol/message.js';
import { TaskSignature, type CanvasApp, type SignatureCallOptions } from './signature.js';
import { mergeArgs } from './wire.js';

/** The result type of a signature or chain. */
export type ResultOf<S> = S extends TaskSignature<infer R> ? R : S extends Chain<infer R> ? R : unknown;
type LastOf<T extends readonly unknown[]> = T extends readonly [...unknown[], infer L] ? L : T extends ReadonlyArray<infer E> ? E : never;

/** A step of a chain: a signature, or a chain (flattened into this one). */
export type ChainStep = TaskSignature<unknown> | Chain<unknown>;

/**
 * Tasks run one after the other, each getting the previous result before its own args (unless it is
 * immutable, `task.si()`). On the wire as Celery sends it: the first task is published with the remaining
 * steps in `embed.chain`, **in reverse order**; every step's id is assigned before the publish (Celery's
 * `freeze()`), so {@link Chain.applyAsync} returns the last step's result. A failing step stops the chain:
 * the worker stores that failure on every remaining step too (Celery's `mark_as_failure`), so `get()` on the
 * chain's result rejects with the step's error.
 *
 * @see celery/canvas.py `_chain.prepare_steps`
 */
export class Chain<R = unknown> {
  /** The steps, flattened, in run order. */
  readonly tasks: ReadonlyArray<TaskSignature>;

  constructor(steps: ReadonlyArray<ChainStep>) {
    const flat: TaskSignature[] = [];
    for (const s of steps) {
      if (s instanceof Chain) flat.push(...s.tasks);
      else if (s instanceof TaskSignature) flat.push(s);
      else {
        const kind = typeof s === 'object' && s !== null ? ((s as object).constructor?.name ?? 'object') : typeof s;
        // Celery upgrades `group | task` to a chord; asynx asks for the chord explicitly.
        const hint = kind === 'Group' ? ': a group inside a chain is not supported; for a group followed by a task, use chord(group, task)' : '';
        throw new UsageError('asynx.canvas.badStep', `chain(): every step must be a signature (task.s(), task.si()) or a chain, got ${kind}${hint}`, { value: String(s) });
      }
    }
    if (flat.length === 0) throw new UsageError('asynx.canvas.emptyChain', 'chain() needs at least one signature: chain(a.s(1), b.s())');
    this.tasks = flat;
  }

  /**
   * Publishes the first step with the others embedded. `args` go before the first step's own; `taskId`
   * names the last step (the chain's result); `linkError` is added to every step; other options apply
   * to the first step, as in Celery.
   */
  async applyAsync(opts: SignatureCallOptions = {}): Promise<AsyncResult<R>> {
    const { args, kwargs, taskId, linkError, ...rest } = opts;
    const app: CanvasApp = this.tasks[0]!.app;
    const backend = await app.backend();
    let steps = this.tasks.map((t) => t.freeze());
    if (taskId) steps[steps.length - 1] = steps[steps.length - 1]!.set({ taskId });
    if (linkError) {
      const ebs = Array.isArray(linkError) ? linkError : [linkError];
      steps = steps.map((s) => ebs.reduce<TaskSignature>((acc, eb) => acc.linkError(eb), s));
    }
    if ((await app.config()).eager) return runEagerly<R>(steps, opts);
    const first = steps[0]!;
    const rootId = rest.rootId ?? first.id!;
    const embedded: Signature[] = steps
      .slice(1)
      .map((s) => ({ ...s.toJSON(), options: { ...s.options, reply_to: backend.replyTo, root_id: rootId } }))
      .reverse();
    await app.send(first.task, mergeArgs(first, args ?? []), { ...first.kwargs, ...kwargs }, { ...first.callOptions, ...rest, rootId, chain: embedded });
    return app.AsyncResult<R>(steps[steps.length - 1]!.id!);
  }

  /** Sends the chain with partial args for the first step. */
  delay(...args: unknown[]): Promise<AsyncResult<R>> {
    return this.applyAsync({ args });
  }
}

/**
 * Builds a chain: `chain(add.s(2, 2), mul.s(4))` computes `(2 + 2) * 4`. The result type is the last step's.
 */
export function chain<const S extends readonly [ChainStep, ...ChainStep[]]>(...steps: S): Chain<ResultOf<LastOf<S>>> {
  return new Chain<ResultOf<LastOf<S>>>(steps);
}

/** Eager mode (tests): each step runs in-process at once, with the previous result; a failure fails the rest. */
async function runEagerly<R>(steps: TaskSignature[], opts: SignatureCallOptions): Promise<AsyncResult<R>> {
  let partial = opts.args ?? [];
  let last: AsyncResult<unknown> | null = null;
  for (const [i, s] of steps.entries()) {
    last = await s.applyAsync(i === 0 ? { args: partial, kwargs: opts.kwargs } : { args: partial });
    if ((await last.state()) !== 'SUCCESS') break;
    partial = [await last.get({ timeout: 0.001 })];
  }
  return last as AsyncResult<R>;
}
