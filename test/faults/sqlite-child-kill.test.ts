// Fault: kill -9 of a pool child, again and again, under load (SQLite). Acks late: every task completes,
// duplicates counted. Acks early: nothing runs twice; only the tasks running in a killed child are dropped.
// The driver (child-kill.ts) is shared with the RabbitMQ and Redis rows.

import { after, describe, it } from 'node:test';
import { join } from 'node:path';
import { Asynx } from '../../src/index.js';
import { childKillRow } from './child-kill.js';
import { Ledger, Nodes, scaled, scratch } from './harness.js';

describe('fault: kill -9 of a pool child (SQLite)', () => {
  const tmp = scratch('child');
  const nodes = new Nodes();
  const clients: Asynx[] = [];
  after(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    await nodes.stopAll();
    tmp.cleanup();
  });

  for (const mode of ['acks-late', 'acks-early'] as const) {
    it(`${mode}: ${mode === 'acks-late' ? 'every task completes, duplicates counted' : 'no task runs twice; drops only what a killed child was running'}`, async () => {
      const brokerUrl = `sqlite://${join(tmp.dir, `${mode}.db`)}`;
      const client = new Asynx({ brokerUrl, configFile: false, resultBackend: 'none' });
      clients.push(client);
      const ledger = new Ledger(join(tmp.dir, `${mode}.ledger`));
      await childKillRow({ broker: 'sqlite', mode, client, ledger, nodes, n: scaled(10_000), spec: { dir: tmp.dir, brokerUrl, name: `child-${mode}`, concurrency: 2 } });
    });
  }
});
