// Shared parts of the test/beat/* process tests: start `asynx beat` / `asynx worker -B` on the beat fixture, read their logs and the ledger.

import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { spawnProcess, type Spawned } from '../helpers/process.js';
import { BIN } from '../helpers/worker.js';

export const BEAT_APP = fileURLToPath(new URL('../fixtures/beat-app.mjs', import.meta.url));

/** One `beat: sent` log line. */
export interface Sent {
  entry: string;
  taskId: string;
  due: number;
}

/** Starts `asynx beat` on the fixture. */
export function beat(env: NodeJS.ProcessEnv, args: string[] = []): Spawned {
  return spawnProcess(process.execPath, [BIN, 'beat', '-A', BEAT_APP, ...args], { env });
}

/** Starts `asynx worker -B` (async pool: no pool children, so kill -9 takes the whole node). */
export function workerB(env: NodeJS.ProcessEnv, name: string, args: string[] = ['-B']): Spawned {
  return spawnProcess(process.execPath, [BIN, 'worker', '-A', BEAT_APP, ...args, '-P', 'async', '-c', '4', '-n', `${name}@%h`, '--no-color'], { env });
}

/** Every `beat: sent` line of a process's output. */
export function sentLines(p: Spawned): Sent[] {
  return [...p.output().matchAll(/beat: sent (\S+) \(beat\.ledger\[([0-9a-f-]+)\]\) due (\S+)/g)].map((m) => ({ entry: m[1]!, taskId: m[2]!, due: Date.parse(m[3]!) }));
}

/** Times (epoch ms) of this process's `beat: leader since` lines. */
export function leaderTimes(p: Spawned): number[] {
  return [...p.output().matchAll(/beat: leader since (\S+)/g)].map((m) => Date.parse(m[1]!));
}

/** Whether the process leads now: its last election line says leader. */
export function leadsNow(p: Spawned): boolean {
  const lines = [...p.output().matchAll(/beat: (leader|follower) since/g)];
  return lines.at(-1)?.[1] === 'leader';
}

/** One line of the ledger: what a worker ran. */
export interface Ran {
  entry: string;
  due: number;
  pid: number;
}

/** The ledger file the fixture's task appends to. */
export function ledger(path: string): Ran[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [entry, due, pid] = l.split(' ');
      return { entry: entry!, due: Date.parse(due!), pid: Number(pid) };
    });
}

/** Due times that occur more than once in `dues`, as ISO strings. */
export function repeated(dues: number[]): string[] {
  const seen = new Set<number>();
  const twice = new Set<number>();
  for (const d of dues) (seen.has(d) ? twice : seen).add(d);
  return [...twice].sort((a, b) => a - b).map((d) => new Date(d).toISOString());
}

/** The seconds in [from, to] (epoch ms, on whole seconds) missing from `dues`. */
export function missingSeconds(dues: number[], from: number, to: number): number[] {
  const have = new Set(dues);
  const out: number[] = [];
  for (let t = from; t <= to; t += 1000) if (!have.has(t)) out.push(t);
  return out;
}
