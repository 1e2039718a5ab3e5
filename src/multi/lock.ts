// Serialises concurrent `multi` calls on the same pidfile directories with proper-lockfile (issue #3 §6).

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import lockfile from 'proper-lockfile';
import { AsynxError } from '../errors.js';

/** Name of the lock directory proper-lockfile creates inside each pidfile directory. */
export const LOCK_NAME = '.asynx-multi.lock';
const POLL_MS = 100;

/**
 * Locks every directory (sorted, so two callers never deadlock), runs `fn`, releases. A holder that died is
 * taken over once its lock is 10 s stale. Directories that do not exist are skipped: nothing there to guard.
 * With `waitMs` 0, returns `fn(false)` instead of waiting when another multi holds a lock.
 */
export async function withDirectoryLock<T>(dirs: readonly string[], waitMs: number, fn: (locked: boolean) => Promise<T>): Promise<T> {
  const releases: Array<() => Promise<void>> = [];
  try {
    for (const dir of [...new Set(dirs)].sort()) {
      if (!existsSync(dir)) continue;
      const lockPath = join(dir, LOCK_NAME);
      try {
        releases.push(await lockfile.lock(dir, {
          lockfilePath: lockPath,
          realpath: false,
          stale: 10_000,
          update: 2_000,
          retries: waitMs <= 0 ? 0 : { retries: Math.ceil(waitMs / POLL_MS), factor: 1, minTimeout: POLL_MS, maxTimeout: POLL_MS },
          // A compromised lock (mtime not updated: event loop blocked > 10 s) must not crash the caller.
          onCompromised: () => undefined,
        }));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ELOCKED') throw err;
        if (waitMs <= 0) return await fn(false);
        throw new AsynxError('asynx.multi.locked', `Another asynx multi is still working on ${dir} after ${Math.round(waitMs / 1000)}s (lock ${lockPath}): wait for it to finish, or remove the lock directory if no multi is running`, { cause: err, facts: { path: lockPath } });
      }
    }
    return await fn(true);
  } finally {
    for (const release of releases.reverse()) await release().catch(() => undefined);
  }
}
