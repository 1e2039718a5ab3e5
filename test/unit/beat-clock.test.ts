// The scheduler with an injected clock on a real SQLite file: DST days end to end, catch-up policies, the claim.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Asynx } from '../../src/app/app.js';
import type { CatchUp } from '../../src/beat/entry.js';
import { Beat } from '../../src/beat/service.js';
import { SqliteScheduleStore } from '../../src/beat/store.js';
import { tempDir } from '../helpers/tmp.js';

const tmp = tempDir('asynx-beat-clock-');
after(() => tmp.cleanup());
let n = 0;

/** An eager app (sends run in-process) on a fresh SQLite file, one entry, and a Beat on a settable clock. */
function setup(schedule: Parameters<Asynx['periodic']>[1], catchUp: CatchUp = 'latest', db = join(tmp.dir, `b${n++}.db`)) {
  const clock = { now: 0 };
  const app = new Asynx({ configFile: false, eager: true, brokerUrl: `sqlite://${db}` });
  const runs: string[] = [];
  app.task('job', () => null);
  app.periodic('job', schedule, 'job', { catchUp });
  const beat = new Beat(app, { now: () => clock.now, maxSleepMs: 60_000 });
  beat.on('beat:sent', (e) => runs.push(new Date(e.dueAt).toISOString()));
  return { app, beat, clock, runs, db };
}

async function advance(b: { beat: Beat; clock: { now: number } }, from: string, to: string, stepMs: number): Promise<void> {
  for (let t = Date.parse(from); t <= Date.parse(to); t += stepMs) {
    b.clock.now = t;
    await b.beat.check();
  }
}

describe('Beat on an injected clock', () => {
  it('a 02:30 Europe/Berlin job runs once on each DST change day', async () => {
    const s = setup({ cron: '30 2 * * *', tz: 'Europe/Berlin' });
    s.clock.now = Date.parse('2026-03-28T12:00:00Z');
    await s.beat.start();
    try {
      await advance(s, '2026-03-28T12:00:00Z', '2026-03-30T12:00:00Z', 7 * 60_000);
      await advance(s, '2026-10-24T12:00:00Z', '2026-10-26T12:00:00Z', 7 * 60_000);
    } finally {
      await s.beat.close();
    }
    // 10-24 00:30Z was missed while the clock jumped from March to October: catchUp 'latest' sends it once, late.
    assert.deepEqual(s.runs, ['2026-03-29T01:00:00.000Z', '2026-03-30T00:30:00.000Z', '2026-10-24T00:30:00.000Z', '2026-10-25T00:30:00.000Z', '2026-10-26T01:30:00.000Z']);
  });

  for (const [policy, expected] of [
    ['none', ['2026-01-01T00:00:10.000Z', '2026-01-01T00:01:10.000Z']],
    ['latest', ['2026-01-01T00:00:10.000Z', '2026-01-01T00:01:00.000Z', '2026-01-01T00:01:10.000Z']],
    ['all', ['2026-01-01T00:00:10.000Z', ...[20, 30, 40, 50].map((s) => `2026-01-01T00:00:${s}.000Z`), '2026-01-01T00:01:00.000Z', '2026-01-01T00:01:10.000Z']],
  ] as const) {
    it(`catchUp '${policy}' after a stop`, async () => {
      const first = setup({ every: 10 }, policy);
      first.clock.now = Date.parse('2026-01-01T00:00:05Z');
      await first.beat.start();
      await advance(first, '2026-01-01T00:00:05Z', '2026-01-01T00:00:15Z', 1000);
      await first.beat.close();
      await first.app.close();
      // Down from 00:00:15 to 00:01:05: 00:00:20 … 00:01:00 are missed.
      const second = setup({ every: 10 }, policy, first.db);
      second.clock.now = Date.parse('2026-01-01T00:01:05Z');
      await second.beat.start();
      await advance(second, '2026-01-01T00:01:05Z', '2026-01-01T00:01:15Z', 1000);
      await second.beat.close();
      await second.app.close();
      assert.deepEqual([...first.runs, ...second.runs], expected);
    });
  }

  it('the store claims a due time once, and only forward', async () => {
    const path = join(tmp.dir, 'claims.db');
    const a = new SqliteScheduleStore(path);
    const b = new SqliteScheduleStore(path);
    try {
      assert.equal(await a.lastDue('e'), null);
      assert.equal(await a.claim('e', 1000), true);
      assert.equal(await b.claim('e', 1000), false);
      assert.equal(await b.claim('e', 500), false);
      assert.equal(await b.claim('e', 2000), true);
      assert.equal(await a.lastDue('e'), 2000);
    } finally {
      await a.close();
      await b.close();
    }
  });
});
