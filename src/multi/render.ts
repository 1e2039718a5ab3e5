// Celery-style progress lines for the multi events (spec §9), and the status table. Writes only where told to.

import { Chalk, type ChalkInstance } from 'chalk';
import type { MultiEvents } from './events.js';
import type { NodeStatusRow } from './status.js';

/** Where and how to print. */
export interface RenderOptions {
  out: NodeJS.WritableStream;
  color: boolean;
  /** `-q`: no progress lines at all, not even FAILED (spec §2). */
  quiet?: boolean;
  /** `--verbose`: print each spawned command line. */
  verbose?: boolean;
}

/** A chalk instance that colours only when asked (TTY, no NO_COLOR, no --no-color). */
export function palette(color: boolean): ChalkInstance {
  return new Chalk({ level: color ? 1 : 0 });
}

function short(signal: string): string {
  return signal.startsWith('SIG') ? signal.slice(3) : signal;
}

function seconds(ms: number): string {
  return `${Math.round(ms / 100) / 10}s`;
}

function indentReason(reason: string | undefined): string {
  if (reason === undefined || reason === '') return '';
  return reason.split('\n').map((line) => `\t\t${line}\n`).join('');
}

/** Subscribes a printer to the events; lines match `celery multi` where Celery has them. */
export function renderEvents(events: MultiEvents, opts: RenderOptions): void {
  if (opts.quiet === true) return;
  const c = palette(opts.color);
  // The "> Waiting for ..." line collects dots and is ended by the next line.
  let lineOpen = false;
  const write = (text: string): void => {
    if (lineOpen) {
      opts.out.write('\n');
      lineOpen = false;
    }
    opts.out.write(text);
  };
  events.on('start:begin', () => write(`${c.blue('> Starting nodes...')}\n`));
  events.on('node:spawn', (e) => {
    if (opts.verbose === true) write(`\t> ${e.node}: ${e.command.join(' ')}\n`);
  });
  events.on('node:start', (e) => {
    if (e.outcome === 'started') write(`\t> ${e.node}: ${c.green('OK')}\n`);
    else if (e.outcome === 'alreadyRunning') write(`\t> ${e.node}: ${c.green(`already running (pid ${e.pid})`)}\n`);
    else write(`\t> ${e.node}: ${c.red('FAILED')}\n${indentReason(e.reason)}`);
  });
  events.on('node:stale', (e) => {
    const what = e.removed ? 'stale pidfile removed' : 'stale pidfile (left in place: another asynx multi holds the lock)';
    const untouched = e.notSignalled === true && e.pid !== null ? `; pid ${e.pid} not signalled` : '';
    write(`> ${e.node}: ${c.yellow(what)} (${e.reason}: ${e.pidfile})${untouched}\n`);
  });
  events.on('node:down', (e) => write(`> ${e.node}: ${c.magenta('DOWN')}\n`));
  events.on('stop:begin', () => write(`${c.blue('> Stopping nodes...')}\n`));
  events.on('node:signal', (e) => write(`\t> ${e.node}: ${short(e.signal)} -> ${e.pid}\n`));
  events.on('node:signal:skipped', (e) => write(`\t> ${e.node}: already ${e.state}, ${short(e.signal)} not sent again -> ${e.pid}\n`));
  events.on('node:signal:failed', (e) => write(`Could not signal ${e.node} (${e.pid}): ${e.message}\n`));
  events.on('wait:begin', (e) => {
    const n = e.nodes.length;
    write(c.blue(`> Waiting for ${n} ${n === 1 ? 'node' : 'nodes'} -> ${e.nodes.map((x) => x.pid).join(', ')}...`));
    lineOpen = true;
  });
  events.on('wait:tick', () => {
    if (lineOpen) opts.out.write('.');
  });
  events.on('node:gone', (e) => write(`\t> ${e.node}: ${c.green('OK')}\n`));
  events.on('node:escalate', (e) => write(`\t> ${e.node}: ${c.red(`KILL -> ${e.pid}`)} (still alive after ${seconds(e.afterMs)})\n`));
  events.on('wait:overdue', (e) => write(`${c.yellow(`> Still alive after ${seconds(e.afterMs)}: ${e.nodes.map((x) => `${x.node} (${x.pid})`).join(', ')}; KILL at ${seconds(e.killAfterMs)}`)}\n`));
  events.on('wait:timeout', (e) => write(`${c.red(`> Timed out after ${seconds(e.afterMs)}; still alive: ${e.nodes.map((x) => `${x.node} (${x.pid})`).join(', ')}`)}\n`));
  events.on('node:restart', (e) => {
    if (e.outcome === 'failed') write(`${c.blue(`> Restarting node ${e.node}: `)}${c.red('FAILED')}\n${indentReason(e.reason)}`);
    else write(`${c.blue(`> Restarting node ${e.node}: `)}${c.green('OK')}\n`);
  });
  events.on('node:skip', (e) => write(`> ${e.node}: ${c.yellow('skipped')} (${e.reason})\n`));
  events.on('node:kill', (e) => write(`Sending KILL to node ${e.node} (${e.pid})\n`));
  // Shown with --verbose, or when a FAILURE could not be stored (the operator should know).
  events.on('node:settled', (e) => {
    if (opts.verbose === true || e.errors.length > 0) write(`\t> ${e.node}: ${e.failed.length} task(s) it was running stored as FAILURE (WorkerLostError)${e.errors.length > 0 ? `; ${e.errors.length} not stored, kept for its next start (${e.errors[0]!.message})` : ''}\n`);
  });
}

function formatUptime(ms: number | null): string {
  if (ms === null) return '-';
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(s / 86_400)}d${String(Math.floor((s % 86_400) / 3600)).padStart(2, '0')}h`;
}

function formatBytes(n: number | null): string {
  if (n === null) return '-';
  if (n < 1024 * 1024) return `${Math.round(n / 1024)}K`;
  return `${(n / (1024 * 1024)).toFixed(1)}M`;
}

/** The status table: one row a node, columns aligned. */
export function formatStatusTable(rows: readonly NodeStatusRow[], color: boolean): string {
  const c = palette(color);
  const header = ['NODE', 'STATE', 'PID', 'UPTIME', 'CPU%', 'RSS', 'POOL', 'ACTIVE', 'TASKS'];
  const cells = rows.map((r) => [
    r.node, r.state, r.pid === null ? '-' : String(r.pid), formatUptime(r.uptimeMs), r.cpu === null ? '-' : r.cpu.toFixed(1),
    formatBytes(r.rss), r.concurrency === null ? '-' : String(r.concurrency), r.active === null ? '-' : String(r.active),
    r.processed === null ? '-' : String(r.processed),
  ]);
  const widths = header.map((h, k) => Math.max(h.length, ...cells.map((row) => (row[k] ?? '').length)));
  const pad = (row: string[]): string[] => row.map((cell, k) => cell.padEnd(widths[k] ?? 0));
  const paint = (state: string, text: string): string => (state === 'up' ? c.green(text) : state === 'down' ? c.magenta(text) : state === 'starting' || state === 'stopping' || state === 'restarting' ? c.yellow(text) : c.red(text));
  const lines = [pad(header).join('  ').trimEnd()];
  cells.forEach((row, k) => {
    const padded = pad(row);
    padded[1] = paint(rows[k]?.state ?? '', padded[1] ?? '');
    let line = padded.join('  ').trimEnd();
    const reason = rows[k]?.reason;
    if (reason !== undefined && rows[k]?.state !== 'up' && rows[k]?.state !== 'restarting') line += `\n    ${reason.split('\n')[0]}`;
    lines.push(line);
  });
  return `${lines.join('\n')}\n`;
}
