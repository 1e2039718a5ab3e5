// Celery's Redis result keys and the JSON task meta its RedisBackend writes (celery/backends/base.py `_store_result`).

import { READY_STATES, type ResultBody } from '../protocol/message.js';

/** Celery's `task_keyprefix`: a task's meta lives at, and is published on, `celery-task-meta-<id>`. */
export const TASK_PREFIX = 'celery-task-meta-';
/** Celery's `group_keyprefix`: saved groups, and the chord counters `<key>.j`, `.t`, `.s`. */
export const GROUP_PREFIX = 'celery-taskset-meta-';

/** The key (and pub/sub channel) of a task's meta. */
export function taskKey(taskId: string): string {
  return TASK_PREFIX + taskId;
}

/** The key of a saved group, or with `suffix` one of its chord counters. */
export function groupKey(groupId: string, suffix: '' | '.j' | '.t' | '.s' | '.c' = ''): string {
  return GROUP_PREFIX + groupId + suffix;
}

/** Python's `datetime.utcnow().isoformat()`: `2026-12-02T00:48:53.123000` (UTC, no zone, microseconds). */
export function pythonUtcIso(ms: number): string {
  return new Date(ms).toISOString().replace(/Z$/, '000');
}

/**
 * The meta JSON in Celery 5.2's key order: status, result, traceback, children, date_done (set on ready
 * states only), group_id when the task is a group member, then task_id. `result_extended` fields (name,
 * args, …) are not written, as Celery does not by default.
 */
export function encodeMeta(body: ResultBody, now = Date.now()): string {
  const meta: Record<string, unknown> = {
    status: body.status,
    result: body.result ?? null,
    traceback: body.traceback ?? null,
    children: body.children ?? [],
    date_done: READY_STATES.has(body.status) ? pythonUtcIso(now) : null,
  };
  if (body.group_id) meta.group_id = body.group_id;
  meta.task_id = body.task_id;
  return JSON.stringify(meta);
}

/** Reads a stored or published meta (Python's or ours); null when it is not one. */
export function decodeMeta(raw: string | null, taskId?: string): ResultBody | null {
  if (raw === null) return null;
  let m: Record<string, unknown>;
  try {
    m = JSON.parse(raw) as Record<string, unknown>;
  } catch {
    return null;
  }
  if (typeof m !== 'object' || m === null || typeof m.status !== 'string') return null;
  const id = typeof m.task_id === 'string' ? m.task_id : taskId;
  if (!id) return null;
  return {
    task_id: id,
    status: m.status,
    result: m.result ?? null,
    traceback: typeof m.traceback === 'string' ? m.traceback : null,
    children: Array.isArray(m.children) ? m.children : [],
    date_done: typeof m.date_done === 'string' ? m.date_done : null,
    ...(typeof m.name === 'string' ? { name: m.name } : {}),
    ...(typeof m.group_id === 'string' ? { group_id: m.group_id } : {}),
  };
}

/** Celery's saved group, `{"result": GroupResult.as_tuple()}`: `[[gid, null], [[[id, null], null], …]]`. */
export function encodeGroup(groupId: string, taskIds: readonly string[]): string {
  return JSON.stringify({ result: [[groupId, null], taskIds.map((id) => [[id, null], null])] });
}

/** The member ids of a saved group, in order (a nested group member gives its own id). */
export function decodeGroup(raw: string | null): string[] | null {
  if (raw === null) return null;
  const parsed = JSON.parse(raw) as { result?: [unknown, Array<[[string, unknown], unknown]>] };
  const members = parsed.result?.[1];
  return Array.isArray(members) ? members.map((m) => m[0][0]) : [];
}
