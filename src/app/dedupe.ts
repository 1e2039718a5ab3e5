// Deduplicated sends (`dedupe: true` with a taskId, or a `dedupeKey`): the header and the errors; the SQLite and Redis transports do the atomic check.

import { UsageError } from '../errors.js';

export { DEDUPE_HEADER } from '../protocol/message.js';

/** The error for `dedupe` on a broker that cannot check atomically (RabbitMQ). */
export function dedupeUnsupported(task: string, broker: string): UsageError {
  return new UsageError(
    'asynx.dedupe.unsupported',
    `Task '${task}': dedupe needs the SQLite or Redis broker; on ${broker} delivery is at-least-once, so send with a taskId and make the task idempotent on it (README "Deduplication")`,
    { task, broker },
  );
}

/** The error for `dedupe: true` without a taskId to dedupe on. */
export function dedupeNeedsKey(task: string): UsageError {
  return new UsageError('asynx.dedupe.noKey', `Task '${task}': dedupe: true needs a taskId (or give a dedupeKey)`, { task });
}
