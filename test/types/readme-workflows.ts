// The README's Workflows example as a TypeScript user writes it, with typed tasks: `npx tsc -p
// tsconfig.check.json` fails if the README's calls stop type-checking (never run: only compiled).

import { Asynx, GroupResult, chain, chord, group } from '../../src/index.js';

export async function readmeWorkflows(): Promise<void> {
  const app = new Asynx();
  const add = app.task('tasks.add', (a: number, b: number) => a + b);
  const mul = app.task('tasks.mul', (a: number, b: number) => a * b);
  const tsum = app.task('tasks.tsum', (xs: number[]) => xs.reduce((s, x) => s + x, 0));
  const notify = app.task('tasks.notify', (_id: string) => undefined);

  add.s(2, 2);
  add.si(2, 2);
  mul.s(10).set({ queue: 'math', countdown: '5s' });
  const forty: number = await (await mul.s(10).delay(4)).get();

  const r = await chain(add.s(2, 2), mul.s(10), add.s(5)).applyAsync();
  const n45: number = await r.get({ timeout: 10 });

  const n34: number = await (await chain(add.s(1, 2), group([mul.s(10), add.s(1)]), tsum.s()).applyAsync()).get({ timeout: 10 });

  const g = await group([add.s(1, 1), add.s(2, 2)]).applyAsync();
  const list: number[] = await g.get({ timeout: 10 });
  await g.completedCount();
  await g.save();
  await (await GroupResult.restore(app, g.id))?.get();
  const sm: number[] = await (await add.starmap([[1, 2], [3, 4]]).applyAsync()).get({ timeout: 10 });
  const ch: number[][] = await (await add.chunks([[1, 1], [2, 2], [3, 3]], 2).applyAsync()).get({ timeout: 10 });
  add.chunks([[1, 1], [2, 2], [3, 3]], 2).group();
  app.sig('billing.invoice', [42], {}, { queue: 'py' });

  const total = await chord([add.s(1, 1), add.s(2, 2)], tsum.s()).applyAsync({ linkError: notify.s() });
  const six: number = await total.get({ timeout: 30 });
  const sixty: number = await (await chord([add.s(1, 1), add.s(2, 2)], chain(tsum.s(), mul.s(10))).applyAsync()).get({ timeout: 30 });
  void [forty, n45, n34, list, sm, ch, six, sixty];
}
