// Serialises concurrent `multi` calls on the same pidfile directories with proper-lockfile (issue #3 §6).

import { accessSync, constants, existsSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import lockfile from 'proper-lockfile';
import { AsynxError, ExitCode } from '../errors.js';
import { makeDirectory } from '../process/make-directory.js';

/** Name of the lock directory proper-lockfile creates inside each pidfile directory. */
export const LOCK_NAME = '.asynx-multi.lock';
const POLL_MS = 100;

function whoAmI(): string {
  try {
    return userInfo().username;
  } catch {
    return `uid ${process.getuid?.() ?? '?'}`;
  }
}

/** The one-line error for a pidfile directory this user cannot create or write (exit 73). */
export function pidfileDirError(dir: string, err: unknown, creating: boolean): AsynxError {
  const code = (err as NodeJS.ErrnoException).code ?? 'error';
  const what = creating ? `Cannot create the pidfile directory ${dir}` : `Cannot write to the pidfile directory ${dir}`;
  const fix = creating ? 'create it with write access for this user' : 'make it writable for this user';
  return new AsynxError('asynx.multi.pidfileDir', `${what} (${code}) as ${whoAmI()}: multi keeps its lock and the workers their pidfiles there; ${fix}, or pass --pidfile=<writable dir>/%n.pid`, { exitCode: ExitCode.cantCreate, cause: err, facts: { path: dir, option: '--pidfile' } });
}

/**
 * Creates each pidfile directory (one level at a time, so `/proc/...` fails at once) and checks this user can
 * write there. Throws {@link pidfileDirError} for the first that fails: `start` and `restart` cannot work without.
 */
export function preparePidfileDirs(dirs: readonly string[]): void {
  for (const dir of [...new Set(dirs)].sort()) {
    try {
      makeDirectory(dir);
    } catch (err) {
      throw pidfileDirError(dir, err, true);
    }
    try {
      accessSync(dir, constants.W_OK | constants.X_OK);
    } catch (err) {
      throw pidfileDirError(dir, err, false);
    }
  }
}

function writable(dir: string): boolean {
  try {
    accessSync(dir, constants.W_OK | constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Takes one directory's lock, polling while another multi holds it; 'busy' when still held after `waitMs`. */
async function lockOne(dir: string, waitMs: number): Promise<(() => Promise<void>) | 'busy'> {
  const lockPath = join(dir, LOCK_NAME);
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      // No retries inside proper-lockfile: it would retry any error (EACCES too) for the whole wait.
      return await lockfile.lock(dir, {
        lockfilePath: lockPath,
        realpath: false,
        stale: 10_000,
        update: 2_000,
        retries: 0,
        // A compromised lock (mtime not updated: event loop blocked > 10 s) must not crash the caller.
        onCompromised: () => undefined,
      });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ELOCKED') throw pidfileDirError(dir, err, false);
      if (Date.now() >= deadline) return 'busy';
      await sleep(POLL_MS);
    }
  }
}

/**
 * Locks every directory (sorted, so two callers never deadlock), runs `fn`, releases. A holder that died is
 * taken over once its lock is 10 s stale. Directories that do not exist are skipped: nothing there to guard.
 * A directory this user cannot write is not locked: `fn(false)` runs (it may read and signal, but not remove
 * files), or, with `mustWrite`, it fails at once (exit 73). With `waitMs` 0, returns `fn(false)` instead of
 * waiting when another multi holds a lock.
 */
export async function withDirectoryLock<T>(dirs: readonly string[], waitMs: number, fn: (locked: boolean) => Promise<T>, opts: { mustWrite?: boolean } = {}): Promise<T> {
  const releases: Array<() => Promise<void>> = [];
  try {
    let locked = true;
    for (const dir of [...new Set(dirs)].sort()) {
      if (!existsSync(dir)) continue;
      if (!writable(dir)) {
        if (opts.mustWrite === true) preparePidfileDirs([dir]);
        locked = false;
        continue;
      }
      const got = await lockOne(dir, waitMs);
      if (got !== 'busy') {
        releases.push(got);
        continue;
      }
      if (waitMs <= 0) return await fn(false);
      const lockPath = join(dir, LOCK_NAME);
      throw new AsynxError('asynx.multi.locked', `Another asynx multi is still working on ${dir} after ${Math.round(waitMs / 1000)}s (lock ${lockPath}): wait for it to finish, or remove the lock directory if no multi is running`, { facts: { path: lockPath } });
    }
    return await fn(locked);
  } finally {
    for (const release of releases.reverse()) await release().catch(() => undefined);
  }
}
