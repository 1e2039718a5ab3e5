// chord(header, body): run a group, then the body once with every result; counted in the result backend, never polled.

import { randomUUID } from 'node:crypto';
import { ChordsUnsupportedError, UsageError } from '../errors.js';
import type { AsyncResult } from '../app/result.js';
import { Group, type GroupCallOptions } from './group.js';
import { dedupeNotCarried } from '../app/call-options.js';
import type { Signature } from '../protocol/message.js';
import { TaskSignature, type SignatureCallOptions } from './signature.js';
import { encodeError } from '../app/execute.js';
import { errorBody } from '../results/body.js';
import { memberFailed, propagates } from './chord-part.js';
import { mergeArgs } from './wire.js';

/** Options of {@link Chord.applyAsync}: partial args and call options for the header members; `taskId` / `linkError` for the body. */
export interface ChordCallOptions extends GroupCallOptions {
  /** The chord's result id: the body's task id (a chain body's last step's). @defaultValue the body's, else a random UUID */
  taskId?: string;
}

/**
 * A group (the header) whose results, in member order, are given as the first argument of one more task (the
 * body), once every member has finished. On the wire as Celery sends it: each header member carries
 * `embed.chord` = the body signature and the `group` / `group_index` headers.
 *
 * Unlike Celery's `chord_unlock` (a task that polls the group every second, forever), the counter lives in the
 * result backend: the chord row is written before the header is published, each member is counted by its
 * group_index when it reaches a ready state (a member redelivered after a worker crash counts once), and the
 * member that completes the count sends the body. If a member failed, the body does not run: its result is a
 * {@link ChordError} naming the member (`Dependency <id> raised ValueError('…')`), and its `linkError`
 * callbacks are sent with the body's id. Chords need a stored result backend (sqlite://… or redis://…); with rpc:// or
 * none, {@link Chord.applyAsync} throws {@link ChordsUnsupportedError} before anything is sent.
 *
 * @see celery/canvas.py `chord.run`, celery/backends/base.py `on_chord_part_return`
 */
/** A chain used as a chord's body (Celery's `chord(header, b.s() | c.s())`): the chord's result is its last step's. */
export interface ChainAsBody<R> {
  applyAsync(opts?: SignatureCallOptions): Promise<AsyncResult<R>>;
  /** @internal The chain's steps in run order (tasks and chords); throws UsageError when it cannot be a body. */
  bodyParts(): ReadonlyArray<TaskSignature<unknown> | Chord<unknown>>;
}

type BodyStep = TaskSignature<unknown> | Chord<unknown>;

/** @internal What a chain adds to a chord step's body: the chain's result id, its errbacks, the steps after it. */
export interface BodyExtras {
  taskId?: string;
  /** Added to every step of the body (and to a chain body's own dict, for the chord's failure). */
  linkError?: Signature[];
  /** Steps after the chord, in Celery order (next step last). */
  chain?: Signature[];
  rootId?: string;
}

function badBody(value: unknown, detail = ''): UsageError {
  return new UsageError('asynx.canvas.badChordBody', `chord(header, body): body must be a signature (task.s(), task.si()) or a chain starting with one${detail}`, { value: String(value) });
}

/**
 * A group (the header) whose results, in member order, are given as the first argument of one more task (the
 * body), once every member has finished. On the wire as Celery sends it: each header member carries
 * `embed.chord` = the body signature and the `group` / `group_index` headers. The body may be a chain
 * (`chord(header, chain(b.s(), c.s()))`, Celery's `chord(header, b.s() | c.s())`): its first task gets the
 * list, and the chord's result is the chain's last step's; on the wire the body is then Celery's chain dict
 * (`subtask_type: 'chain'`, `kwargs.tasks`).
 *
 * Unlike Celery's `chord_unlock` (a task that polls the group every second, forever), the counter lives in the
 * result backend: the chord row is written before the header is published, each member is counted by its
 * group_index when it reaches a ready state (a member redelivered after a worker crash counts once), and the
 * member that completes the count sends the body. If a member failed, the body does not run: its result is a
 * {@link ChordError} naming the member (`Dependency <id> raised ValueError('…')`), and its `linkError`
 * callbacks are sent with the body's id. Chords need a stored result backend (sqlite://…); with rpc:// or
 * none, {@link Chord.applyAsync} throws {@link ChordsUnsupportedError} before anything is sent.
 *
 * @see celery/canvas.py `chord.run`, celery/backends/base.py `on_chord_part_return`
 */
export class Chord<R = unknown> {
  readonly header: Group<unknown>;
  /** The body's steps in run order: one task, or a chain's steps. */
  private readonly steps: ReadonlyArray<BodyStep>;

  constructor(
    header: Group<unknown> | ReadonlyArray<TaskSignature<unknown>>,
    /** The task (or chain) that gets the header's results. */
    body: TaskSignature<R> | ChainAsBody<R>,
    /** @internal */ private readonly extras: BodyExtras = {},
  ) {
    this.header = header instanceof Group ? header : new Group<unknown>(header);
    if (body instanceof TaskSignature) this.steps = [body];
    else if (typeof body === 'object' && body !== null && typeof (body as Partial<ChainAsBody<R>>).bodyParts === 'function') this.steps = body.bodyParts();
    else throw badBody(body);
    if (!(this.steps[0] instanceof TaskSignature)) throw badBody(body, ', got a chain starting with a chord: put a task first');
    for (const step of this.steps) {
      if (step instanceof TaskSignature && (step.callOptions.dedupe || step.callOptions.dedupeKey !== undefined)) throw dedupeNotCarried(step.task, 'chord body', step.task);
    }
  }

  /** The body's first task: the one that gets the list of the header's results. */
  get body(): TaskSignature<unknown> {
    return this.steps[0] as TaskSignature<unknown>;
  }

  /** Sends the header; resolves to the body's result (which rejects with ChordError if a member failed). */
  async applyAsync(opts: ChordCallOptions = {}): Promise<AsyncResult<R>> {
    const { taskId, linkError, ...rest } = opts;
    const app = this.body.app;
    const backend = await app.backend();
    const eager = (await app.config()).eager;
    if (!backend.chords && !eager) throw new ChordsUnsupportedError(backend.kind);
    const me = taskId || linkError ? this.withBody({ taskId, linkError: linkError ? (Array.isArray(linkError) ? linkError : [linkError]) : undefined }) : this;
    if (eager || !backend.chords) return me.runEagerly(rest);
    const { dict, head, tail, resultId } = me.frozenBody(backend.replyTo);
    if (this.header.tasks.length === 0) {
      await app.send(head.task, mergeArgs(head, [[]]), head.kwargs, { ...head.callOptions, chain: [...(me.extras.chain ?? []), ...[...tail].reverse()] });
      return app.AsyncResult<R>(resultId);
    }
    const gid = rest.groupId ?? randomUUID();
    const size = this.header.tasks.length;
    // Celery's body dict, with its own reply queue and `chord_size`, as a Python worker expects it.
    const bodyDict: Record<string, unknown> = { ...dict, chord_size: size };
    await backend.chords.create(gid, size, bodyDict);
    await this.header.publish(app, { ...rest, groupId: gid }, () => ({ chord: bodyDict }));
    return app.AsyncResult<R>(resultId);
  }

  /**
   * Eager mode (tests): the header runs in-process, then the body with its results; a failed member fails the
   * body with a ChordError naming it and sends the body's linkError callbacks once, as a worker does.
   */
  private async runEagerly(rest: GroupCallOptions): Promise<AsyncResult<R>> {
    const app = this.body.app;
    const steps = this.prepared();
    // An empty header runs the body with [] (as on a worker); group([]) alone has no app to send with.
    const members = this.header.tasks.length ? (await this.header.applyAsync(rest)).results : [];
    const parts = await Promise.all(members.map(async (m, i) => ({ taskId: m.id, groupIndex: i, status: await m.state(), result: await m.info() })));
    const culprit = parts.find((p) => propagates(p.status));
    if (!culprit) {
      let partial: unknown[] = [parts.map((p) => p.result)];
      let last: AsyncResult<unknown> | null = null;
      for (const s of steps) {
        last = await s.applyAsync({ args: partial });
        if ((await last.state()) !== 'SUCCESS') break;
        partial = [await last.get({ timeout: 0.001 })];
      }
      return last as AsyncResult<R>;
    }
    const ids = steps.filter((s): s is TaskSignature<unknown> => s instanceof TaskSignature).map((s) => s.id!);
    const resultId = ids[ids.length - 1]!;
    const err = encodeError(memberFailed(culprit, resultId));
    const backend = await app.backend();
    for (const s of steps) if (s instanceof TaskSignature) await backend.store({ taskId: s.id!, taskName: s.task }, errorBody(s.id!, 'FAILURE', err));
    // As a worker does: a task body's own errbacks, or those given to a chain body (on its chain dict).
    const errbacks = steps.length === 1 ? listOf((steps[0] as TaskSignature<unknown>).callOptions.linkError) : (this.extras.linkError ?? []);
    for (const eb of errbacks) {
      await app.send(eb.task, mergeArgs(eb, [resultId]), eb.kwargs, typeof eb.options.task_id === 'string' ? { taskId: eb.options.task_id } : {});
    }
    return app.AsyncResult<R>(resultId);
  }

  /** The body's steps with ids assigned, the chain's result id on the last and its errbacks on each. */
  private prepared(): BodyStep[] {
    const { taskId, linkError = [] } = this.extras;
    const last = this.steps.length - 1;
    return this.steps.map((p, i) => {
      let q: BodyStep = p;
      if (i === last && taskId) q = q instanceof TaskSignature ? q.set({ taskId }) : q.withBody({ taskId });
      if (linkError.length) q = q instanceof TaskSignature ? linkError.reduce<TaskSignature<unknown>>((acc, eb) => acc.linkError(eb), q) : q.withBody({ linkError });
      return q instanceof TaskSignature ? q.freeze() : q;
    });
  }

  /**
   * The body as a worker sends it: a task's dict (the steps after the chord in its `options.chain`), or a
   * chain body's Celery chain dict whose `kwargs.tasks` end with the steps after the chord. `head` is the
   * first task, `tail` the other steps' dicts in run order, `resultId` the chord's result.
   */
  private frozenBody(replyTo: string | undefined): { dict: Signature; head: TaskSignature<unknown>; tail: Signature[]; resultId: string } {
    const x = this.extras;
    const common = { ...(x.rootId ? { root_id: x.rootId } : {}), ...(replyTo ? { reply_to: replyTo } : {}) };
    let resultId = '';
    const steps = this.prepared();
    const dicts = steps.map((q): Signature => {
      if (q instanceof TaskSignature) {
        resultId = q.id!;
        return { ...q.toJSON(), options: { ...q.options, ...common } };
      }
      const { step, resultId: id } = q.chainStep(replyTo, x.rootId);
      resultId = id;
      return step;
    });
    const head = steps[0] as TaskSignature<unknown>;
    const after = x.chain ?? [];
    if (dicts.length === 1) {
      const only = dicts[0]!;
      return { dict: after.length ? { ...only, options: { ...only.options, chain: after } } : only, head, tail: [], resultId };
    }
    // Celery's chain dict; its task_id is the chain's result (Celery freezes a chain to its last task's id).
    const options: Record<string, unknown> = { task_id: resultId, ...common, ...(x.linkError?.length ? { link_error: x.linkError } : {}) };
    const dict: Signature = { task: 'celery.chain', args: [], kwargs: { tasks: [...dicts, ...[...after].reverse()] }, options, subtask_type: 'chain', immutable: false };
    return { dict, head, tail: dicts.slice(1), resultId };
  }

  /**
   * @internal The chord as a step of a chain, in Celery's wire form: `{task: 'celery.chord', subtask_type:
   * 'chord', kwargs: {header: <group dict>, body: <signature dict>, kwargs: {}}}`, every id assigned (the header's
   * group id in its `options.task_id`, as Celery freezes it). The worker that runs the step before it sends
   * it. Returns the dict and the chord's result id (its body's, or its body chain's last step's).
   */
  chainStep(replyTo: string | undefined, rootId: string | undefined): { step: Signature; resultId: string } {
    const gid = randomUUID();
    const { dict: bodyDict, resultId } = (rootId && !this.extras.rootId ? this.withBody({ rootId }) : this).frozenBody(replyTo);
    const common = { ...(rootId ? { root_id: rootId } : {}), ...(replyTo ? { reply_to: replyTo } : {}) };
    const tasks = this.header.tasks.map((t, i) => {
      const m = t.freeze();
      return { ...m.toJSON(), options: { ...m.options, ...common, group_id: gid, group_index: i } };
    });
    const own = { task_id: gid, ...(rootId ? { root_id: rootId } : {}) };
    const header: Signature = { task: 'celery.group', args: [], kwargs: { tasks }, options: own, subtask_type: 'group', immutable: false };
    const step: Signature = { task: 'celery.chord', args: [], kwargs: { kwargs: {}, header, body: bodyDict }, options: own, subtask_type: 'chord', immutable: false };
    return { step, resultId };
  }

  /** @internal A copy whose body gets more: the chain's result id, errbacks (added), the steps after it. */
  withBody(more: BodyExtras): Chord<R> {
    const x = this.extras;
    const merged: BodyExtras = {
      taskId: more.taskId ?? x.taskId,
      linkError: [...(x.linkError ?? []), ...(more.linkError ?? [])],
      chain: more.chain ?? x.chain,
      rootId: more.rootId ?? x.rootId,
    };
    const steps = this.steps;
    return new Chord<R>(this.header, { bodyParts: () => steps } as unknown as ChainAsBody<R>, merged);
  }

  /** Sends the chord with partial args for every header member. */
  delay(...args: unknown[]): Promise<AsyncResult<R>> {
    return this.applyAsync({ args });
  }
}

function listOf<T>(v: T | T[] | undefined): T[] {
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

/**
 * Builds a chord: `chord([add.s(1, 2), add.s(3, 4)], tsum.s())` runs both additions, then `tsum([3, 7])`.
 * The header may be a {@link Group} or a list of signatures; the body a signature or a chain.
 */
export function chord<R>(header: Group<unknown> | ReadonlyArray<TaskSignature<unknown>>, body: TaskSignature<R> | ChainAsBody<R>): Chord<R> {
  return new Chord<R>(header, body);
}
