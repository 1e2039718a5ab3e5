// Progress line on a TTY (stderr): case, step and a bar; silent when stderr is not a terminal.

export class Progress {
  private readonly tty = Boolean(process.stderr.isTTY) && !process.env.CI;
  private label = '';
  private last = 0;

  /** Starts a new step. */
  step(label: string): void {
    this.label = label;
    this.draw(0, 0);
  }

  /** Updates the bar for the current step (throttled to 20 redraws a second). */
  tick(done: number, total: number): void {
    const now = Date.now();
    if (now - this.last < 50 && done < total) return;
    this.last = now;
    this.draw(done, total);
  }

  private draw(done: number, total: number): void {
    if (!this.tty) return;
    const width = 24;
    const filled = total ? Math.round((done / total) * width) : 0;
    const bar = total ? ` ▕${'█'.repeat(filled)}${'░'.repeat(width - filled)}▏ ${done.toLocaleString('en-US')}/${total.toLocaleString('en-US')}` : '';
    const cols = process.stderr.columns ?? 100;
    process.stderr.write(`\r\x1b[2K${`${this.label}${bar}`.slice(0, cols - 1)}`);
  }

  /** Clears the line. */
  done(): void {
    if (this.tty) process.stderr.write('\r\x1b[2K');
  }

  /** A line that stays (TTY or not, on stderr). */
  note(line: string): void {
    this.done();
    process.stderr.write(`${line}\n`);
  }
}
