// chord(header, body): run a group, then the body once with every result; counted in the result backend, never polled.

import { randomUUID } from 'node:crypto';
import { ChordsUnsupportedError, UsageError } from '../errors.js';
import type { AsyncResult } from '../app/result.js';
import { Group, type GroupCallOptions } from './group.js';
import { dedupeNotCarried, type SendOptions } from '../app/call-options.js';
import type { Signature } from '../protocol/message.js';
import { TaskSignature } from './signature.js';
import { encodeError } from '../app/execute.js';
import { errorBody } from '../results/body.js';
import { memberFailed, propagates } from './chord-part.js';
import { mergeArgs, signatureList } from './wire.js';

/** Options of {@link Chord.applyAsync}: partial args and call options for the header members; `taskId` / `linkError` for the body. */
export interface ChordCallOptions extends GroupCallOptions {
  /** The body's task id (the chord's result). @defaultValue the body's, else a random UUID */
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
 * callbacks are sent with the body's id. Chords need a stored result backend (sqlite://…); with rpc:// or
 * none, {@link Chord.applyAsync} throws {@link ChordsUnsupportedError} before anything is sent.
 *
 * @see celery/canvas.py `chord.run`, celery/backends/base.py `on_chord_part_return`
 */
export class Chord<R = unknown> {
  readonly header: Group<unknown>;

  constructor(
    header: Group<unknown> | ReadonlyArray<TaskSignature<unknown>>,
    /** The task that gets the header's results. */
    readonly body: TaskSignature<R>,
  ) {
    this.header = header instanceof Group ? header : new Group<unknown>(header);
    if (!(body instanceof TaskSignature)) throw new UsageError('asynx.canvas.badChordBody', 'chord(header, body): body must be a signature (task.s(), task.si())', { value: String(body) });
    if (body.callOptions.dedupe || body.callOptions.dedupeKey !== undefined) throw dedupeNotCarried(body.task, 'chord body', body.task);
  }

  /** Sends the header; resolves to the body's result (which rejects with ChordError if a member failed). */
  async applyAsync(opts: ChordCallOptions = {}): Promise<AsyncResult<R>> {
    const { taskId, linkError, ...rest } = opts;
    const app = this.body.app;
    const backend = await app.backend();
    const eager = (await app.config()).eager;
    if (!backend.chords && !eager) throw new ChordsUnsupportedError(backend.kind);
    let body = this.body.freeze();
    if (taskId) body = body.set({ taskId });
    if (linkError) for (const eb of Array.isArray(linkError) ? linkError : [linkError]) body = body.linkError(eb);
    if (this.header.tasks.length === 0) return body.applyAsync({ args: [[]] });
    if (eager || !backend.chords) {
      // Eager mode (tests): the header runs in-process, then the body with its results; a failed member fails
      // the body with a ChordError naming it and sends the body's linkError callbacks, as a worker does.
      const header = await this.header.applyAsync(rest);
      const parts = await Promise.all(header.results.map(async (m, i) => ({ taskId: m.id, groupIndex: i, status: await m.state(), result: await m.info() })));
      const culprit = parts.find((p) => propagates(p.status));
      if (!culprit) return body.applyAsync({ args: [parts.map((p) => p.result)] });
      const bodyId = body.id!;
      await backend.store({ taskId: bodyId, taskName: body.task }, errorBody(bodyId, 'FAILURE', encodeError(memberFailed(culprit, bodyId))));
      for (const eb of signatureList(body.options.link_error) ?? []) {
        await app.send(eb.task, mergeArgs(eb, [bodyId]), eb.kwargs, typeof eb.options.task_id === 'string' ? { taskId: eb.options.task_id } : {});
      }
      return app.AsyncResult<R>(bodyId);
    }
    const gid = rest.groupId ?? randomUUID();
    const size = this.header.tasks.length;
    // Celery's body dict, with its own reply queue and `chord_size`, as a Python worker expects it.
    const bodyDict: Record<string, unknown> = { ...body.toJSON(), options: { ...body.options, reply_to: backend.replyTo }, chord_size: size };
    await backend.chords.create(gid, size, bodyDict);
    await this.header.publish(app, { ...rest, groupId: gid }, () => ({ chord: bodyDict }));
    return app.AsyncResult<R>(body.id!);
  }

  /**
   * @internal The chord as a step of a chain, in Celery's wire form: `{task: 'celery.chord', subtask_type:
   * 'chord', kwargs: {header: <group dict>, body: <signature dict>, kwargs: {}}}`, every id assigned (the header's
   * group id in its `options.task_id`, as Celery freezes it). The worker that runs the step before it sends
   * it. Returns the dict and the body's id (the step's result).
   */
  chainStep(replyTo: string | undefined, rootId: string, linkError: Signature[] = []): { step: Signature; resultId: string } {
    const gid = randomUUID();
    let body = this.body.freeze();
    for (const eb of linkError) body = body.linkError(eb);
    const common = { root_id: rootId, ...(replyTo ? { reply_to: replyTo } : {}) };
    const tasks = this.header.tasks.map((t, i) => {
      const m = t.freeze();
      return { ...m.toJSON(), options: { ...m.options, ...common, group_id: gid, group_index: i } };
    });
    const header: Signature = { task: 'celery.group', args: [], kwargs: { tasks }, options: { task_id: gid, root_id: rootId }, subtask_type: 'group', immutable: false };
    const bodyDict: Signature = { ...body.toJSON(), options: { ...body.options, ...common } };
    const step: Signature = { task: 'celery.chord', args: [], kwargs: { kwargs: {}, header, body: bodyDict }, options: { task_id: gid, root_id: rootId }, subtask_type: 'chord', immutable: false };
    return { step, resultId: body.id! };
  }

  /** @internal A copy whose body carries more call options (a chain puts the steps after the chord there). */
  withBody(options: SendOptions): Chord<R> {
    return new Chord<R>(this.header, this.body.clone([], {}, options));
  }

  /** Sends the chord with partial args for every header member. */
  delay(...args: unknown[]): Promise<AsyncResult<R>> {
    return this.applyAsync({ args });
  }
}

/**
 * Builds a chord: `chord([add.s(1, 2), add.s(3, 4)], tsum.s())` runs both additions, then `tsum([3, 7])`.
 * The header may be a {@link Group} or a list of signatures.
 */
export function chord<R>(header: Group<unknown> | ReadonlyArray<TaskSignature<unknown>>, body: TaskSignature<R>): Chord<R> {
  return new Chord<R>(header, body);
}
