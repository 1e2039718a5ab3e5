// CLI output helpers: colour only on a TTY (NO_COLOR and --no-color honoured), progress bars.

import { Chalk, type ChalkInstance } from 'chalk';

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
