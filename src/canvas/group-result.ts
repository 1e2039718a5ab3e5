// GroupResult: the results of a group's members, in member order; saved and restored by group id.

import { UsageError } from '../errors.js';
import type { AsyncResult, GetOptions } from '../app/result.js';
import type { ResultBackend } from '../results/backend.js';
import { durationMs } from '../util/duration.js';
import type { CanvasApp } from './signature.js';

/** Options of {@link GroupResult.revoke}. */
export interface RevokeOptions {
  /** Also kill the members already running. @defaultValue false */
  terminate?: boolean;
  /** Signal for `terminate`. @defaultValue 'SIGTERM' */
  signal?: NodeJS.Signals;
}

function unsupported(backend: ResultBackend, what: string): UsageError {
  return new UsageError('asynx.group.notStored', `GroupResult.${what} needs a result backend that stores results (sqlite://… or redis://…); the "${backend.kind}" backend keeps none to save or restore`, { value: backend.kind });
}

/**
 * A GroupResult in Celery's `as_tuple()` form, `[[groupId, null], [[[memberId, null], null], …]]`: what a
 * worker stores as the result of a task that returned a group's result (the built-in `celery.chunks`).
 */
export type GroupResultTuple = [[string, null], Array<[[string, null], null]>];

/**
 * The results of a group (Celery's `GroupResult`). `get()` waits for every member and resolves to their
 * results in member order; with `propagate` (the default) it rejects with the first failed member's error.
 */
export class GroupResult<R = unknown> {
  constructor(
    private readonly app: CanvasApp,
    /** The group id (every member's `group` header). */
    readonly id: string,
    /** The members' results, in group order. */
    readonly results: ReadonlyArray<AsyncResult<R>>,
  ) {}

  /**
   * Waits for every member, in order, within one overall `timeout`. Rejects with the first failure in member
   * order (propagate), or resolves to each result (errors as their stored dicts when `propagate: false`).
   */
  async get(opts: GetOptions = {}): Promise<R[]> {
    const total = durationMs(opts.timeout ?? 60, 'timeout');
    const deadline = Date.now() + total;
    const out: R[] = [];
    for (const r of this.results) out.push(await r.get({ ...opts, timeout: `${Math.max(1, deadline - Date.now())}ms` }));
    return out;
  }

  /** Celery's `join()`: the same as {@link GroupResult.get}. */
  join(opts: GetOptions = {}): Promise<R[]> {
    return this.get(opts);
  }

  private async states(): Promise<string[]> {
    return Promise.all(this.results.map((r) => r.state()));
  }

  /** True when every member is SUCCESS, FAILURE or REVOKED. */
  async ready(): Promise<boolean> {
    return (await this.states()).every((s) => s === 'SUCCESS' || s === 'FAILURE' || s === 'REVOKED');
  }

  /** True when some member is not ready yet. */
  async waiting(): Promise<boolean> {
    return !(await this.ready());
  }

  /** How many members succeeded (Celery's `completed_count()`). */
  async completedCount(): Promise<number> {
    return (await this.states()).filter((s) => s === 'SUCCESS').length;
  }

  /** True when every member succeeded. */
  async successful(): Promise<boolean> {
    return (await this.states()).every((s) => s === 'SUCCESS');
  }

  /** True when some member failed. */
  async failed(): Promise<boolean> {
    return (await this.states()).some((s) => s === 'FAILURE');
  }

  /**
   * Revokes every member through remote control (Celery's `GroupResult.revoke()`): workers skip the members
   * not started yet, and with `terminate` kill the running ones.
   */
  async revoke(opts: RevokeOptions = {}): Promise<void> {
    const config = await this.app.config();
    const { openControlClient } = await import('../control/client.js');
    const client = await openControlClient(config.brokerUrl, { cwd: this.app.cwd, connectTimeoutMs: config.connectTimeoutMs });
    try {
      await client.broadcast('revoke', { task_id: this.results.map((r) => r.id), terminate: opts.terminate ?? false, signal: opts.signal ?? 'SIGTERM' }, { reply: false });
    } finally {
      await client.close();
    }
  }

  /** Stores the member ids under `celery-taskset-meta-<id>`, so another process can {@link GroupResult.restore} it. */
  async save(): Promise<this> {
    const backend = await this.app.backend();
    if (!backend.saveGroup) throw unsupported(backend, 'save()');
    await backend.saveGroup(this.id, this.results.map((r) => r.id));
    return this;
  }

  /** Removes the saved group (not the members' results). */
  async delete(): Promise<void> {
    const backend = await this.app.backend();
    await backend.deleteGroup?.(this.id);
  }

  /** Removes the members' results and the saved group. */
  async forget(): Promise<void> {
    await Promise.all(this.results.map((r) => r.forget()));
    await this.delete();
  }

  /** This group in Celery's `as_tuple()` form (see {@link GroupResultTuple}). */
  asTuple(): GroupResultTuple {
    return [[this.id, null], this.results.map((r): [[string, null], null] => [[r.id, null], null])];
  }

  /**
   * A GroupResult from Celery's `as_tuple()` form (Celery's `result_from_tuple`), e.g. the result of a
   * `celery.chunks` task. Throws UsageError `asynx.group.badTuple` for anything else.
   */
  static fromTuple<R = unknown>(app: CanvasApp, tuple: unknown): GroupResult<R> {
    const idOf = (v: unknown): string | null => (Array.isArray(v) && typeof v[0] === 'string' ? v[0] : null);
    const gid = Array.isArray(tuple) ? idOf(tuple[0]) : null;
    const members = Array.isArray(tuple) && Array.isArray(tuple[1]) ? (tuple[1] as unknown[]).map((m) => (Array.isArray(m) ? idOf(m[0]) : null)) : null;
    if (gid === null || members === null || members.some((m) => m === null)) {
      throw new UsageError('asynx.group.badTuple', `GroupResult.fromTuple(): expected Celery's [[groupId, parent], [[[taskId, parent], null], ...]], got ${JSON.stringify(tuple)?.slice(0, 200)}`);
    }
    return new GroupResult<R>(app, gid, members.map((m) => app.AsyncResult<R>(m!)));
  }

  /** A saved group by id (Celery's `GroupResult.restore(id)`), or null when none is saved under it. */
  static async restore<R = unknown>(app: CanvasApp, id: string): Promise<GroupResult<R> | null> {
    const backend = await app.backend();
    if (!backend.restoreGroup) throw unsupported(backend, 'restore()');
    const ids = await backend.restoreGroup(id);
    return ids === null ? null : new GroupResult<R>(app, id, ids.map((t) => app.AsyncResult<R>(t)));
  }
}
