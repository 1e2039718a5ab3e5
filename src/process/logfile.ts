// A node's log file: sync appends, reopen on a rotation signal, built-in size rotation (path → path.1 … path.<keep>).

import { closeSync, fstatSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { AsynxError, ExitCode, UsageError } from '../errors.js';

function badLogOption(option: string, value: unknown, want: string): UsageError {
  return new UsageError('asynx.logfile.badOption', `${option} must be ${want}, got ${String(value)}`, { option, value });
}

/** Options of {@link LogFile}. */
export interface LogFileOptions {
  /** Rotate when a write would take the file past this many bytes; 0 turns rotation off. @defaultValue 0 */
  maxSize?: number;
  /** Rotated files kept (`path.1` is the newest). 0 means the file is truncated instead. @defaultValue 5 */
  keep?: number;
}

/** An append-only log file. Writes are sync so that the last lines before a crash or exit are on disk. */
export class LogFile {
  readonly path: string;
  private readonly maxSize: number;
  private readonly keep: number;
  private fd: number | null = null;
  private size = 0;

  constructor(path: string, opts: LogFileOptions = {}) {
    this.path = resolve(path);
    this.maxSize = opts.maxSize ?? 0;
    this.keep = opts.keep ?? 5;
    if (!Number.isInteger(this.maxSize) || this.maxSize < 0) throw badLogOption('--logfile-max-size', opts.maxSize, 'a whole number of bytes >= 0');
    if (!Number.isInteger(this.keep) || this.keep < 0) throw badLogOption('--logfile-keep', opts.keep, 'a whole number >= 0');
    this.open();
  }

  /** Appends one line (the caller includes the trailing newline), rotating first if it would not fit. */
  write(line: string): void {
    if (this.fd === null) this.open();
    const bytes = Buffer.byteLength(line);
    if (this.maxSize > 0 && this.size > 0 && this.size + bytes > this.maxSize) this.rotate();
    writeSync(this.fd as number, line);
    this.size += bytes;
  }

  /** Closes and opens the path again: after an external tool (logrotate) moved the file away. */
  reopen(): void {
    this.close();
    this.open();
  }

  /** Closes the file; a later write opens it again. */
  close(): void {
    if (this.fd === null) return;
    try {
      closeSync(this.fd);
    } finally {
      this.fd = null;
    }
  }

  private open(): void {
    const dir = dirname(this.path);
    try {
      mkdirSync(dir, { recursive: true });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      throw new AsynxError('asynx.logfile.dirUnwritable', `Cannot create log directory ${dir} (${code}): create it with write access for this user, or pass --logfile=<writable path>`, { exitCode: ExitCode.cantCreate, cause: err, facts: { path: this.path, option: '--logfile' } });
    }
    try {
      this.fd = openSync(this.path, 'a', 0o644);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      throw new AsynxError('asynx.logfile.unwritable', `Cannot open log file ${this.path} (${code}): pass --logfile=<writable path>`, { exitCode: ExitCode.cantCreate, cause: err, facts: { path: this.path, option: '--logfile' } });
    }
    this.size = fstatSync(this.fd).size;
  }

  private rotate(): void {
    this.close();
    if (this.keep === 0) {
      rmSync(this.path, { force: true });
    } else {
      rmSync(`${this.path}.${this.keep}`, { force: true });
      for (let k = this.keep - 1; k >= 1; k--) {
        try {
          renameSync(`${this.path}.${k}`, `${this.path}.${k + 1}`);
        } catch {
          // A gap in the series is fine.
        }
      }
      try {
        renameSync(this.path, `${this.path}.1`);
      } catch {
        // Another process rotated it already.
      }
    }
    this.open();
  }
}
