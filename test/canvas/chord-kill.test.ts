// A chord of 100 members on SQLite whose worker is killed -9 mid-run (acks late): the body runs once, with 100 results.

import assert from 'node:assert/strict';
import { after, it } from 'node:test';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Asynx, chord } from '../../src/index.js';
import { startWorker, type RunningWorker } from '../helpers/worker.js';
import { tempDir, waitFor } from '../helpers/tmp.js';
import { CANVAS_APP as APP, canvasTasks } from '../helpers/canvas.js';

const N = 100;
const lines = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : []);

const tmp = tempDir();
const workers: RunningWorker[] = [];
after(async () => {
  for (const w of workers) await w.stop('SIGKILL').catch(() => undefined);
  tmp.cleanup();
});

it('kill -9 of the worker running chord members (acks late): each member counted once, the body runs once with 100 results', async () => {
  const brokerUrl = `sqlite://${join(tmp.dir, 'k.db')}`;
  const ledger = join(tmp.dir, 'ledger');
  const bodyFile = join(tmp.dir, 'body');
  // A short lease, so the killed node's unacked messages come back quickly.
  const env = { ASYNX_ACKS_LATE: '1', ASYNX_VISIBILITY_TIMEOUT: '2s' };
  const a = await startWorker({ brokerUrl, app: APP, args: ['-c', '2', '-n', 'a@%h'], env });
  workers.push(a);
  const client = new Asynx({ brokerUrl, configFile: false });
  try {
    const t = canvasTasks(client);
    const members = Array.from({ length: N }, (_, i) => t.slow.s(i, ledger, 100));
    const r = await chord(members, t.collect.s(bodyFile)).applyAsync();
    await waitFor('20 members started on worker a', () => lines(ledger).length >= 20, 60_000);
    await a.stop('SIGKILL');
    const b = await startWorker({ brokerUrl, app: APP, args: ['-c', '2', '-n', 'b@%h'], env });
    workers.push(b);
    const results = await r.get({ timeout: 90 });
    assert.deepEqual(results, Array.from({ length: N }, (_, i) => i), 'every member result, in group order');
    // Let any second firing surface before counting.
    await new Promise((res) => setTimeout(res, 2500));
    assert.equal(lines(bodyFile).length, 1, 'the body ran once');
    const runs = lines(ledger);
    const seen = new Map<string, number>();
    for (const l of runs) seen.set(l, (seen.get(l) ?? 0) + 1);
    assert.equal(seen.size, N, 'every member ran');
    const twice = [...seen].filter(([, n]) => n > 1).map(([i]) => i);
    assert.ok(twice.length >= 1, `the kill interrupted members, which ran again on b (runs: ${runs.length})`);
  } finally {
    await client.close();
  }
});
