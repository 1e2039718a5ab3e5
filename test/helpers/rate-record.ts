// Reads the start/end lines the rate-limit fixture app (test/fixtures/rate-app.mjs) appends, in write order.

import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import type { Asynx } from '../../src/index.js';

export const RATE_APP = fileURLToPath(new URL('../fixtures/rate-app.mjs', import.meta.url));

export interface RecordLine {
  event: 'start' | 'end';
  name: string;
  at: number;
  id: string;
  workerPid: number;
  /** Position in the file (O_APPEND writes: the real order of the writes). */
  index: number;
}

export function readRecord(path: string): RecordLine[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8').split('\n').filter(Boolean).map((l, index) => {
    const [event, name, at, id, pid] = l.split(' ');
    return { event: event as 'start' | 'end', name: name!, at: Number(at), id: id!, workerPid: Number(pid), index };
  });
}

/** Lines of one task name and event. */
export function linesOf(lines: RecordLine[], name: string, event: 'start' | 'end', ids?: Set<string>): RecordLine[] {
  return lines.filter((l) => l.name === name && l.event === event && (!ids || ids.has(l.id)));
}

/** Sends `n` calls of `name` in one tick (one publish transaction on SQLite, in order); resolves to their ids. */
export async function sendMany(app: Asynx, name: string, n: number, args: unknown[] = [], options: Record<string, unknown> = {}): Promise<Set<string>> {
  const results = await Promise.all(Array.from({ length: n }, () => app.sendTask(name, args, {}, options)));
  return new Set(results.map((r) => r.id));
}

/**
 * The rate-limit trap (Celery #8119) on one worker: 100 tasks limited to 10/s, then 100 unlimited ones
 * sent after them. The unlimited ones all end before the 20th limited one starts (order of the record's
 * writes), and the limited ones take at least 9 s from first to last start (100 starts at 10/s).
 */
export function assertNoStarvation(lines: RecordLine[], limited: Set<string>, free: Set<string>): void {
  const starts = linesOf(lines, 'r.limited', 'start', limited);
  const freeEnds = linesOf(lines, 'r.free', 'end', free);
  assert.equal(starts.length, 100, 'every limited task started once');
  assert.equal(freeEnds.length, 100, 'every unlimited task ended once');
  const twentieth = starts[19]!;
  const lastFree = freeEnds[freeEnds.length - 1]!;
  assert.ok(lastFree.index < twentieth.index, `the 100 unlimited tasks all end before the 20th limited one starts (last free end at line ${lastFree.index}, 20th limited start at line ${twentieth.index})`);
  const times = starts.map((l) => l.at).sort((a, b) => a - b);
  const span = times[99]! - times[0]!;
  assert.ok(span >= 9_000, `100 starts at 10/s take at least 9 s (took ${span} ms)`);
}
