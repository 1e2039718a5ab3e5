// Canvas typings as a Celery user writes workflows (never run: compiled by `npx tsc -p tsconfig.check.json`).

import { Asynx, chain, chord, group, type Group } from '../../src/index.js';

export async function mixedGroups(): Promise<void> {
  const app = new Asynx();
  const add = app.task('p.add', (a: number, b: number) => a + b);
  const cat = app.task('p.cat', (a: string, b: string) => a + b);
  const count = app.task('p.count', (xs: Array<number | string>) => xs.length);
  // Members of different tasks, as in Celery's group(add.s(1, 1), concat.s('a', 'b')).
  const g: Group<number | string> = group([add.s(1, 1), cat.s('a', 'b')]);
  const values: Array<number | string> = await (await g.applyAsync()).get();
  // @ts-expect-error the members' results are number | string, not number
  const wrong: number[] = await (await g.applyAsync()).get();
  const same: number[] = await (await group([add.s(1, 1), add.s(2, 2)]).applyAsync()).get();
  const n: number = await (await chain(add.s(1, 1), group([add.s(1), cat.si('a', 'b')]), count.s()).applyAsync()).get();
  const m: number = await (await chord(group([add.s(1, 1), cat.s('a', 'b')]), count.s()).applyAsync()).get();
  // A chain as a chord's body: the chord's result is the chain's last step's.
  const k: string = await (await chord([add.s(1, 1)], chain(count.s(), add.s(1), cat.si('x', 'y'))).applyAsync()).get();
  void [values, wrong, same, n, m, k];
}
