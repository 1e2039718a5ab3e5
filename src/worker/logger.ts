// Worker log lines in Celery's shape: `[2026-11-25 14:00:00,123: INFO/MainProcess] message`.

import chalk, { Chalk } from 'chalk';
import { UsageError } from '../errors.js';
import type { LogFile } from '../process/logfile.js';

export type LogLevel = 'debug' | 'info' | 'warning' | 'error' | 'critical';
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warning: 30, error: 40, critical: 50 };

/** Parses `-l/--loglevel` (case-insensitive; `warn` accepted). */
export function parseLogLevel(value: string): LogLevel {
  const v = value.toLowerCase() === 'warn' ? 'warning' : value.toLowerCase();
  if (!(v in ORDER)) throw new UsageError('asynx.cli.badLogLevel', `Unknown log level '${value}': use debug, info, warning, error or critical`, { option: '--loglevel', value });
  return v as LogLevel;
}

function stamp(d = new Date()): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())},${p(d.getMilliseconds(), 3)}`;
}

/** Writes to a LogFile when given, else to a stream (stderr); colour only when asked (TTY, no NO_COLOR). */
export class Logger {
  private readonly min: number;
  private readonly paint: InstanceType<typeof Chalk> | null;

  constructor(
    private readonly opts: { level: LogLevel; file?: LogFile | null; stream?: NodeJS.WritableStream; color?: boolean; processName?: string; node?: string },
  ) {
    this.min = ORDER[opts.level];
    this.paint = opts.color && !opts.file ? new Chalk({ level: chalk.level || 1 }) : null;
  }

  enabled(level: LogLevel): boolean {
    return ORDER[level] >= this.min;
  }

  log(level: LogLevel, message: string): void {
    if (!this.enabled(level)) return;
    let tag = `${level.toUpperCase()}/${this.opts.processName ?? 'MainProcess'}`;
    if (this.paint) {
      const c = level === 'error' || level === 'critical' ? this.paint.red : level === 'warning' ? this.paint.yellow : level === 'debug' ? this.paint.gray : this.paint.green;
      tag = c(tag);
    }
    const line = `[${stamp()}: ${tag}] ${this.opts.node ? `${this.opts.node}: ` : ''}${message}\n`;
    if (this.opts.file) this.opts.file.write(line);
    else (this.opts.stream ?? process.stderr).write(line);
  }

  debug(m: string): void {
    this.log('debug', m);
  }
  info(m: string): void {
    this.log('info', m);
  }
  warn(m: string): void {
    this.log('warning', m);
  }
  error(m: string): void {
    this.log('error', m);
  }

  /** Reopens the log file (after logrotate moved it). */
  reopen(): void {
    this.opts.file?.reopen();
  }

  close(): void {
    this.opts.file?.close();
  }
}
