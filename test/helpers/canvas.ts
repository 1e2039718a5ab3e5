// The canvas fixture app (test/fixtures/canvas-app.mjs) and its tasks as a client declares them.

import { fileURLToPath } from 'node:url';
import type { Asynx } from '../../src/index.js';

export const CANVAS_APP = fileURLToPath(new URL('../fixtures/canvas-app.mjs', import.meta.url));

/** The client side of the fixture's tasks (same names; handlers never run here). */
export function canvasTasks(app: Asynx) {
  return {
    add: app.task('c.add', (a: number, b: number) => a + b),
    mul: app.task('c.mul', (a: number, b: number) => a * b),
    pair: app.task('c.pair', (a: unknown, b: unknown) => [a, b]),
    tsum: app.task('c.tsum', (xs: number[]) => xs.reduce((s, x) => s + x, 0)),
    fail: app.task('c.fail', (_x: unknown): number => {
      throw new Error('never here');
    }),
    note: app.task('c.note', (id: string, _file: string, _tag?: string) => id),
    slow: app.task('c.slow', (i: number, _file: string, _ms: number) => i),
    collect: app.task('c.collect', (results: number[], _file: string) => results),
  };
}

