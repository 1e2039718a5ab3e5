// Case 8, events: asynx end to end at -c 2 with task events off vs on (-E, with a receiver attached), on
// SQLite and (when a RabbitMQ node can run) AMQP. Runs alternate between the two nodes; the ratio is on/off.
// To split the costs: BENCH_NO_RECEIVER=1 leaves the receiver out, BENCH_NO_AMQP=1 the AMQP half.

import { receiveEvents } from '../../dist/events/receiver.js';
import type { BenchContext } from '../context.js';
import { median, ratio, type BenchRow } from '../report.js';
import { client, mark, publishAll, startAsynx } from '../workers.js';

async function measure(ctx: BenchContext, label: string, broker: string, n: number): Promise<BenchRow[]> {
  ctx.progress.step(`8 events (${label}): starting two asynx nodes (-c 2), task events off and on`);
  const off = await startAsynx(ctx, broker, 2, 'ev-off');
  const on = await startAsynx(ctx, broker, 2, 'ev-on', undefined, { ASYNX_WORKER_SEND_TASK_EVENTS: 'true' });
  let received = 0;
  // What a monitor (Flower, asynx events, the dashboard) costs too: on RabbitMQ the events are routed to its queue.
  const receiver = process.env.BENCH_NO_RECEIVER ? { close: async () => undefined } : await receiveEvents(broker, (e) => {
    if (e.type.startsWith('task-')) received++;
  }, { cwd: ctx.dir });
  const app = client(ctx, broker);
  const rates: Record<'off' | 'on', number[]> = { off: [], on: [] };
  try {
    await mark(ctx, app, 'ev-off');
    await mark(ctx, app, 'ev-on');
    for (let run = 1; run <= ctx.runs; run++) {
      for (const mode of ['off', 'on'] as const) {
        const queue = `ev-${mode}`;
        ctx.progress.step(`8 events (${label}): task events ${mode}, run ${run}/${ctx.runs}`);
        const t0 = performance.now();
        await publishAll(n, () => app.sendTask('bench.noop', [], {}, { queue, ignoreResult: true }), (d) => ctx.progress.tick(d, n));
        await mark(ctx, app, queue);
        rates[mode].push((n / (performance.now() - t0)) * 1000);
      }
    }
  } finally {
    await receiver.close();
    await Promise.all([off.stop(), on.stop()]);
  }
  const offRate = median(rates.off);
  const onRate = median(rates.on);
  const r = ratio(onRate, offRate);
  return [
    { case: '8 events', metric: `asynx ${label} -c 2, task events off`, value: offRate, unit: 'tasks/s' },
    {
      case: '8 events',
      metric: `asynx ${label} -c 2, task events on (-E) + a receiver`,
      value: onRate,
      unit: 'tasks/s',
      baseline: { label: 'events off', value: offRate },
      ratio: r,
      target: '≥ 0.90 (≤ 10 % cost)',
      met: r !== null && r >= 0.9,
      note: `${received} task events received (3 per task: received, started, succeeded)`,
    },
  ];
}

export async function events(ctx: BenchContext): Promise<BenchRow[]> {
  const n = ctx.n(20_000);
  const rows = await measure(ctx, 'SQLite', `sqlite://${ctx.path('events.db')}`, n);
  const rabbit = process.env.BENCH_NO_AMQP ? null : await ctx.rabbit();
  if (!rabbit) rows.push({ case: '8 events', metric: 'asynx AMQP events off vs on', value: null, unit: '', note: ctx.rabbitReason ?? 'no RabbitMQ' });
  else rows.push(...(await measure(ctx, 'AMQP', rabbit.url, n)));
  return rows;
}
