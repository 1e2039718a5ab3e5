// Raw better-sqlite3 / file-system errors → one AsynxError per failure kind, with a code and what to do.

import { AsynxError, BrokerUnavailableError, UsageError, type ErrorFacts } from '../errors.js';

/** Stable codes of SQLite storage failures (broker file and result store alike). */
export const SQLITE_ERROR_CODES = {
  busy: 'asynx.sqlite.busy',
  full: 'asynx.sqlite.full',
  cantOpen: 'asynx.sqlite.cantOpen',
  readOnly: 'asynx.sqlite.readOnly',
  corrupt: 'asynx.sqlite.corrupt',
  io: 'asynx.sqlite.ioError',
  failed: 'asynx.sqlite.failed',
} as const;

/** One of {@link SQLITE_ERROR_CODES}. */
export type SqliteErrorCode = (typeof SQLITE_ERROR_CODES)[keyof typeof SQLITE_ERROR_CODES];

/**
 * A SQLite storage failure. It is a BrokerUnavailableError (exit code 69: the embedded broker cannot
 * serve), so callers that branch on "broker unavailable" keep working, but each kind has its own code
 * (`asynx.sqlite.busy`, `.full`, `.cantOpen`, `.readOnly`, `.corrupt`, `.ioError`, `.failed`) and the
 * driver's error as `cause`.
 */
export class SqliteStorageError extends BrokerUnavailableError {
  override readonly code: SqliteErrorCode;
  constructor(code: SqliteErrorCode, message: string, opts: { cause?: unknown; facts?: ErrorFacts } = {}) {
    super(message, opts);
    this.code = code;
    this.name = 'SqliteStorageError';
  }
}

/** The driver's (or the file system's) code of an error, e.g. `SQLITE_BUSY`, `ENOTDIR`. */
function driverCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : '';
}

/** True while another connection holds the lock: the caller may wait and try again. */
export function isBusy(err: unknown): boolean {
  if (err instanceof SqliteStorageError) return err.code === SQLITE_ERROR_CODES.busy;
  const code = driverCode(err);
  return code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED' || code.startsWith('SQLITE_BUSY_') || code.startsWith('SQLITE_LOCKED_');
}

/** What went wrong, and where. */
export interface SqliteFailure {
  /** Absolute path of the database file. */
  path: string;
  /** The operation, completing "Cannot …": `publish`, `store results`, `open the broker database` … */
  what: string;
  /** The busy timeout in force, ms (named in the "locked" message). */
  busyTimeoutMs: number;
}

/**
 * `sqlite:///missing/dir/x.db`: the directory of an explicit database path does not exist. A UsageError
 * (exit 64), not a storage failure: nothing was created, and retrying cannot help until the URL or the
 * directory is fixed.
 */
export function noDirectoryError(dir: string, path: string, urlName: string): UsageError {
  return new UsageError('asynx.sqlite.noDirectory', `The directory ${dir} for the SQLite database ${path} does not exist: create it (mkdir -p ${dir}), or fix the ${urlName}`, { path, directory: dir });
}

/** Maps a raw error to a {@link SqliteStorageError}; an AsynxError passes through unchanged. */
export function sqliteError(err: unknown, at: SqliteFailure): Error {
  if (err instanceof AsynxError) return err;
  const code = driverCode(err);
  const raw = err instanceof Error ? err.message : String(err);
  const facts: ErrorFacts = { path: at.path, value: code || undefined };
  const make = (c: SqliteErrorCode, message: string, extra: ErrorFacts = {}) => new SqliteStorageError(c, message, { cause: err, facts: { ...facts, ...extra } });
  if (isBusy(err)) {
    return make(SQLITE_ERROR_CODES.busy, `Cannot ${at.what}: another process holds a write lock on the SQLite database ${at.path} for longer than the busy timeout (${at.busyTimeoutMs} ms) (${raw}${code.startsWith('SQLITE_BUSY_') || code.startsWith('SQLITE_LOCKED') ? `, ${code}` : ''}). Find the process keeping a transaction open (fuser ${at.path}), or retry later`, { timedOut: true });
  }
  if (code === 'SQLITE_FULL' || code === 'ENOSPC' || code === 'SQLITE_IOERR_WRITE') {
    return make(SQLITE_ERROR_CODES.full, `Cannot ${at.what}: the disk is full or unwritable (${raw}). Free space on the file system of ${at.path}, then retry`);
  }
  if (code.startsWith('SQLITE_CANTOPEN') || code === 'ENOTDIR' || code === 'EEXIST' || code === 'EACCES' || code === 'EPERM' || code === 'ENOENT' || code === 'EROFS' || code === 'EISDIR') {
    return make(SQLITE_ERROR_CODES.cantOpen, `Cannot open the SQLite database ${at.path} (${raw}). Check the path and permissions: every parent must be a directory this user can write, on a file system mounted read-write, or point ASYNX_BROKER_URL / ASYNX_RESULT_BACKEND at sqlite://<path> elsewhere`);
  }
  if (code.startsWith('SQLITE_READONLY')) {
    return make(SQLITE_ERROR_CODES.readOnly, `Cannot ${at.what}: the SQLite database ${at.path} is read-only (${raw}). Make the file, its -wal/-shm files and their directory writable by this user, or remount the file system read-write`);
  }
  if (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB') {
    return make(SQLITE_ERROR_CODES.corrupt, `Cannot ${at.what}: ${at.path} is not a valid SQLite database or is corrupt (${raw}). Stop every worker and client using it, then move the file aside (pending tasks in it are lost) or repair it with sqlite3 .recover`);
  }
  if (code.startsWith('SQLITE_IOERR')) {
    return make(SQLITE_ERROR_CODES.io, `Cannot ${at.what}: an I/O error on the SQLite database ${at.path}: the disk is full or failing (${raw}). Free space, check the disk and the file system (dmesg), then retry`);
  }
  return make(SQLITE_ERROR_CODES.failed, `Cannot ${at.what}: the SQLite database ${at.path} failed (${raw}). Check the database file, or report this with the cause attached`);
}
