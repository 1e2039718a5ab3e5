// chain(a.s(), b.s(), c.s()): each step gets the previous result; only the first is published, the rest ride in embed.chain.

import { randomUUID } from 'node:crypto';
import { dedupeNotCarried } from '../app/call-options.js';
import { ChordsUnsupportedError, UsageError } from '../errors.js';
import type { AsyncResult } from '../app/result.js';
import type { Signature } from '../protocol/message.js';
import { Chord } from './chord.js';
import { Group } from './group.js';
import { TaskSignature, type CanvasApp, type SignatureCallOptions } from './signature.js';
import { mergeArgs } from './wire.js';

/** The result type of a signature, chord or chain. */
export type ResultOf<S> = S extends TaskSignature<infer R> ? R : S extends Chain<infer R> ? R : S extends Chord<infer R> ? R : unknown;
type LastOf<T extends readonly unknown[]> = T extends readonly [...unknown[], infer L] ? L : T extends ReadonlyArray<infer E> ? E : never;

/**
 * A step of a chain: a signature, a chord, a chain (flattened into this one), or a group followed by another
 * step (upgraded to a chord, as Celery does with `group | task`).
 */
export type ChainStep = TaskSignature<unknown> | Chain<unknown> | Group<unknown> | Chord<unknown>;

/** A step as the chain keeps it: a task, or a chord (a group followed by a task becomes one). */
export type ChainPart = TaskSignature<unknown> | Chord<unknown>;

function kindOf(s: unknown): string {
  return typeof s === 'object' && s !== null ? ((s as object).constructor?.name ?? 'object') : typeof s;
}

function badStep(problem: string, value: unknown): UsageError {
  return new UsageError('asynx.canvas.badStep', `chain(): ${problem}`, { value: String(value) });
}

function groupLast(): UsageError {
  return new UsageError(
    'asynx.canvas.groupLast',
    'chain(): a group as the last step is not supported (its result would be a GroupResult, not one AsyncResult): end the chain with a task that takes the list of results, chain(a.s(), group([b.s(), c.s()]), collect.s()), which runs as a chord; or send the group on its own',
  );
}

/** Flattens chains and upgrades `group, task` to `chord(group, task)`; a group may stay only as the last step. */
function partsOf(steps: ReadonlyArray<ChainStep>): Array<ChainPart | Group<unknown>> {
  const flat: Array<ChainPart | Group<unknown>> = [];
  for (const s of steps) {
    if (s instanceof Chain) flat.push(...s.parts);
    else if (s instanceof TaskSignature || s instanceof Group || s instanceof Chord) flat.push(s);
    else throw badStep(`every step must be a signature (task.s(), task.si()), a group, a chord or a chain, got ${kindOf(s)}`, s);
  }
  const out: Array<ChainPart | Group<unknown>> = [];
  for (let i = 0; i < flat.length; i++) {
    const s = flat[i]!;
    const next = flat[i + 1];
    if (!(s instanceof Group) || next === undefined) {
      out.push(s);
      continue;
    }
    if (!(next instanceof TaskSignature)) {
      throw badStep(`a group must be followed by a task signature, which gets the list of its results (a chord), got ${kindOf(next)}: put a task between them, chain(a.s(), group([...]), collect.s(), ...)`, next);
    }
    out.push(new Chord(s, next));
    i++;
  }
  return out;
}

/**
 * Tasks run one after the other, each getting the previous result before its own args (unless it is
 * immutable, `task.si()`). On the wire as Celery sends it: the first task is published with the remaining
 * steps in `embed.chain`, **in reverse order**; every step's id is assigned before the publish (Celery's
 * `freeze()`), so {@link Chain.applyAsync} returns the last step's result.
 *
 * A group followed by a task is upgraded to a chord, as Celery does (`group | task` → `chord(group, task)`):
 * each member gets the previous result as its partial argument, and the task gets the list of their results.
 * In `embed.chain` it is Celery's chord dict (`subtask_type: 'chord'`, `kwargs: {header, body}`), which the
 * worker that finishes the step before it sends (a Python Celery worker can too, with a chord-capable backend);
 * the steps after it ride on the body. A chain with a chord needs a result backend that counts chords
 * (sqlite://…): else {@link Chain.applyAsync} throws {@link ChordsUnsupportedError} before anything is sent. A
 * group as the **last** step is refused when sent (UsageError `asynx.canvas.groupLast`: end with a task that
 * takes the list); asynx workers still run such a step sent by a Python client (`a.s() | group(...)`).
 *
 * A failing step stops the chain: the worker stores that failure on every remaining step (a chord step: its
 * members and body), as Celery's `mark_as_failure` does, so `get()` on the chain's result rejects with it.
 * Options set on a later step (`mul.s(2).set({ queue: 'math', countdown: 5 })`) are honoured when the worker
 * sends it; without them, a task the worker knows goes to its own queue and priority.
 *
 * @see celery/canvas.py `_chain.prepare_steps`
 */
export class Chain<R = unknown> {
  /** @internal The steps in run order, flattened; a trailing group stays a group (refused when sent). */
  readonly parts: ReadonlyArray<ChainPart | Group<unknown>>;

  constructor(steps: ReadonlyArray<ChainStep>) {
    const parts = partsOf(steps);
    if (parts.length === 0) throw new UsageError('asynx.canvas.emptyChain', 'chain() needs at least one signature: chain(a.s(1), b.s())');
    for (const p of parts.slice(1)) {
      const body = p instanceof TaskSignature ? p : null;
      if (body && (body.callOptions.dedupe || body.callOptions.dedupeKey !== undefined)) throw dedupeNotCarried(body.task, 'chain step', body.task);
    }
    this.parts = parts;
  }

  /** The steps, flattened, in run order: signatures and chords (a group followed by a task is a chord). */
  get tasks(): ReadonlyArray<ChainPart> {
    return this.parts.filter((p): p is ChainPart => !(p instanceof Group));
  }

  /**
   * Publishes the first step with the others embedded. `args` go before the first step's own (a chord's: before
   * each header member's); `taskId` names the last step (the chain's result); `linkError` is added to every
   * step (a chord's: to its body); other options apply to the first step, as in Celery.
   */
  async applyAsync(opts: SignatureCallOptions = {}): Promise<AsyncResult<R>> {
    const { args, kwargs, taskId, linkError, ...rest } = opts;
    if (this.parts.some((p) => p instanceof Group)) throw groupLast();
    let steps = this.parts as ReadonlyArray<ChainPart>;
    const app: CanvasApp = steps[0] instanceof Chord ? steps[0].body.app : (steps[0] as TaskSignature).app;
    const backend = await app.backend();
    const eager = (await app.config()).eager;
    if (!eager && !backend.chords && steps.some((s) => s instanceof Chord)) throw new ChordsUnsupportedError(backend.kind);
    const ebs = linkError ? (Array.isArray(linkError) ? linkError : [linkError]) : [];
    steps = steps.map((s, i) => {
      let t = s instanceof TaskSignature ? s.freeze() : s;
      if (taskId && i === steps.length - 1) t = t instanceof TaskSignature ? t.set({ taskId }) : t.withBody({ taskId });
      if (ebs.length) t = t instanceof TaskSignature ? ebs.reduce<TaskSignature>((acc, eb) => acc.linkError(eb), t) : t.withBody({ linkError: ebs });
      return t;
    });
    if (eager) return runEagerly<R>(steps, opts);
    const first = steps[0]!;
    // Celery's root_id: the first task's id; a chord first has several, so the chain gets one of its own.
    const rootId = rest.rootId ?? (first instanceof TaskSignature ? first.id! : randomUUID());
    const replyTo = backend.replyTo;
    let lastId = '';
    const embedded: Signature[] = steps.slice(1).map((s) => {
      if (s instanceof Chord) {
        const { step, resultId } = s.chainStep(replyTo, rootId);
        lastId = resultId;
        return step;
      }
      lastId = s.id!;
      return { ...s.toJSON(), options: { ...s.options, reply_to: replyTo, root_id: rootId } };
    });
    embedded.reverse();
    if (first instanceof Chord) {
      // The chord goes now; the rest of the chain rides on its body (Celery's chord.run with chain=…).
      const r = await first.withBody({ chain: embedded, rootId }).applyAsync({ ...rest, rootId, args, kwargs });
      return app.AsyncResult<R>(steps.length > 1 ? lastId : r.id);
    }
    await app.send(first.task, mergeArgs(first, args ?? []), { ...first.kwargs, ...kwargs }, { ...first.callOptions, ...rest, rootId, chain: embedded });
    return app.AsyncResult<R>(steps.length > 1 ? lastId : first.id!);
  }

  /**
   * @internal The steps of this chain as a chord's body (`chord(header, chain(b.s(), c.s()))`): refused with
   * UsageError `asynx.canvas.groupLast` when it ends with a group.
   */
  bodyParts(): ReadonlyArray<ChainPart> {
    if (this.parts.some((p) => p instanceof Group)) throw groupLast();
    return this.parts as ReadonlyArray<ChainPart>;
  }

  /** Sends the chain with partial args for the first step. */
  delay(...args: unknown[]): Promise<AsyncResult<R>> {
    return this.applyAsync({ args });
  }
}

/**
 * Builds a chain: `chain(add.s(2, 2), mul.s(4))` computes `(2 + 2) * 4`. The result type is the last step's.
 * `chain(a.s(), group([b.s(), c.s()]), d.s())` runs b and c with a's result, then d with `[b, c]`.
 */
export function chain<const S extends readonly [ChainStep, ...ChainStep[]]>(...steps: S): Chain<ResultOf<LastOf<S>>> {
  return new Chain<ResultOf<LastOf<S>>>(steps);
}

/** Eager mode (tests): each step runs in-process at once, with the previous result; a failure fails the rest. */
async function runEagerly<R>(steps: ReadonlyArray<ChainPart>, opts: SignatureCallOptions): Promise<AsyncResult<R>> {
  let partial = opts.args ?? [];
  let last: AsyncResult<unknown> | null = null;
  for (const [i, s] of steps.entries()) {
    last = await s.applyAsync(i === 0 ? { args: partial, kwargs: opts.kwargs } : { args: partial });
    if ((await last.state()) !== 'SUCCESS') break;
    partial = [await last.get({ timeout: 0.001 })];
  }
  return last as AsyncResult<R>;
}
