// chord(header, body): run a group, then the body once with every result; counted in the result backend, never polled.

import { randomUUID } from 'node:crypto';
import { ChordsUnsupportedError, UsageError } from '../errors.js';
import type { AsyncResult } from '../app/result.js';
import { Group, type GroupCallOptions } from './group.js';
import { TaskSignature } from './signature.js';

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
 * callbacks are sent with the body's id. Chords need a stored result backend (sqlite://… or redis://…); with rpc:// or
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
      // Eager mode (tests): the header runs in-process, then the body with its results (a failure propagates).
      const header = await this.header.applyAsync(rest);
      return body.applyAsync({ args: [await header.get({ timeout: 0.001 })] });
    }
    const gid = rest.groupId ?? randomUUID();
    const size = this.header.tasks.length;
    // Celery's body dict, with its own reply queue and `chord_size`, as a Python worker expects it.
    const bodyDict: Record<string, unknown> = { ...body.toJSON(), options: { ...body.options, reply_to: backend.replyTo }, chord_size: size };
    await backend.chords.create(gid, size, bodyDict);
    await this.header.publish(app, { ...rest, groupId: gid }, () => ({ chord: bodyDict }));
    return app.AsyncResult<R>(body.id!);
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
