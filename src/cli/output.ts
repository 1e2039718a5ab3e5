// CLI output helpers: colour only on a TTY (NO_COLOR and --no-color honoured), error lines, progress bars.

import { Chalk, type ChalkInstance } from 'chalk';
import { errorMessage, isAsynxError } from '../errors.js';

/** True when colour should be used on this stream. */
export function wantColor(stream: NodeJS.WritableStream, env: NodeJS.ProcessEnv = process.env, flag = true): boolean {
  if (!flag) return false;
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  return Boolean((stream as NodeJS.WriteStream).isTTY);
}

/** A chalk instance that paints only when colour is wanted. */
export function painter(stream: NodeJS.WritableStream, env: NodeJS.ProcessEnv = process.env, flag = true): ChalkInstance {
  return new Chalk({ level: wantColor(stream, env, flag) ? 1 : 0 });
}

/** `TypeError: kaput` for a task's failure: its type once, then its message (never `Error: Error: ...`). */
export function failureLine(err: unknown): string {
  const name = err instanceof Error ? err.name : 'Error';
  return `${name}: ${errorMessage(err)}`;
}

/**
 * What the CLI prints when a command ends with `err`: `asynx: <message>` once. An error that is not an
 * AsynxError is a bug in asynx, so its stack follows; with ASYNX_DEBUG set every error shows its stack and
 * its causes.
 */
export function formatCliError(err: unknown, paint: ChalkInstance, env: NodeJS.ProcessEnv = process.env): string {
  const debug = Boolean(env.ASYNX_DEBUG);
  if (isAsynxError(err)) {
    let out = `${paint.red('asynx:')} ${err.message}\n`;
    if (debug) {
      for (let e: unknown = err; e instanceof Error; e = e.cause) out += `${e.stack ?? String(e)}\n`;
    }
    return out;
  }
  const stack = err instanceof Error && err.stack ? err.stack.split('\n').slice(1).join('\n') : '';
  return `${paint.red('asynx:')} internal error (please report it with this trace): ${failureLine(err)}\n${stack ? `${stack}\n` : ''}`;
}

/** A one-line progress bar, redrawn in place on a TTY; silent elsewhere. */
export class ProgressBar {
  private last = 0;
  constructor(
    private readonly stream: NodeJS.WriteStream,
    private readonly total: number,
    private readonly label: string,
  ) {}

  get active(): boolean {
    return Boolean(this.stream.isTTY);
  }

  update(done: number, extra = ''): void {
    if (!this.active) return;
    const now = Date.now();
    if (now - this.last < 50 && done < this.total) return;
    this.last = now;
    const width = 30;
    const filled = Math.round((done / Math.max(1, this.total)) * width);
    const bar = '█'.repeat(filled) + '░'.repeat(width - filled);
    this.stream.write(`\r${this.label} ${bar} ${done}/${this.total} ${extra}`.padEnd(90));
  }

  finish(): void {
    if (this.active) this.stream.write('\n');
  }
}
