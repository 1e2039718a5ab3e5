// The SQLite broker wakes idle consumers on publish (this process directly, other processes through the WAL
// watch) instead of waiting for the poll, and writes queued acks in the next claim's commit.

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { buildTaskMessage } from '../../src/protocol/codec.js';
import { SqliteTransport } from '../../src/transports/sqlite.js';
import type { Delivery } from '../../src/transports/transport.js';
import { runToEnd } from '../helpers/process.js';
import { tempDir, waitFor } from '../helpers/tmp.js';

const SRC = fileURLToPath(new URL('../../src/transports/sqlite.ts', import.meta.url));
const CODEC = fileURLToPath(new URL('../../src/protocol/codec.ts', import.meta.url));
/** Every poll of an empty queue waits this long: a delivery before it can only come from a wake-up. */
const POLL_MS = 60_000;

describe('SQLite broker: wake on publish', () => {
  const tmp = tempDir('asynx-sqlite-wake-');
  after(() => tmp.cleanup());

  it('another process publishes: the WAL watch wakes the idle consumer (no poll tick needed)', async () => {
    const db = join(tmp.dir, 'cross.db');
    const t = new SqliteTransport(db, { minPollIntervalMs: POLL_MS, maxPollIntervalMs: POLL_MS });
    const got: Delivery[] = [];
    const c = await t.consume(['q'], 4, (d) => got.push(d));
    try {
      // The first (empty) claim is done and the consumer sleeps for a minute.
      await waitFor('the first empty claim', () => (t as unknown as { consumers: Set<{ idleWait: boolean }> }).consumers.values().next().value?.idleWait, 5_000, 10);
      const script = join(tmp.dir, 'publish.mts');
      writeFileSync(
        script,
        `import { SqliteTransport } from ${JSON.stringify(SRC)};\nimport { buildTaskMessage } from ${JSON.stringify(CODEC)};\n` +
          `const t = new SqliteTransport(${JSON.stringify(db)});\nawait t.publish('q', buildTaskMessage('t.x', [1], {}).message);\nawait t.close();\n`,
      );
      const r = await runToEnd(process.execPath, ['--import', 'tsx', script], { timeoutMs: 30_000 });
      assert.equal(r.code, 0, r.stderr);
      await waitFor('the delivery', () => got.length === 1, 10_000, 10);
      assert.equal(t.wakeups.poll, 0, 'no poll timer fired');
      assert.ok(t.wakeups.watch >= 1, `woken by the WAL watch: ${JSON.stringify(t.wakeups)}`);
      await t.ack(got[0]!);
    } finally {
      await c.cancel();
      await t.close();
    }
  });

  it('this process publishes: the idle consumer is woken directly', async () => {
    const db = join(tmp.dir, 'same.db');
    const t = new SqliteTransport(db, { minPollIntervalMs: POLL_MS, maxPollIntervalMs: POLL_MS });
    const got: Delivery[] = [];
    const c = await t.consume(['q'], 4, (d) => got.push(d));
    try {
      await waitFor('the first empty claim', () => (t as unknown as { consumers: Set<{ idleWait: boolean }> }).consumers.values().next().value?.idleWait, 5_000, 10);
      const before = t.wakeups.publish;
      await t.publish('q', buildTaskMessage('t.x', [2], {}).message);
      await waitFor('the delivery', () => got.length === 1, 10_000, 10);
      assert.equal(t.wakeups.poll, 0, 'no poll timer fired');
      assert.equal(t.wakeups.publish, before + 1, 'woken by the publish');
      await t.ack(got[0]!);
    } finally {
      await c.cancel();
      await t.close();
    }
  });

  it('acks queued in the same tick as a claim are written in its commit, each exactly once', async () => {
    const db = join(tmp.dir, 'merge.db');
    const t = new SqliteTransport(db, { minPollIntervalMs: POLL_MS, maxPollIntervalMs: POLL_MS });
    for (let i = 0; i < 6; i++) await t.publish('q', buildTaskMessage('t.x', [i], {}).message);
    const got: Delivery[] = [];
    const c = await t.consume(['q'], 4, (d) => got.push(d));
    try {
      await waitFor('the first claim', () => got.length === 4, 5_000, 10);
      const raw = new Database(db, { readonly: true });
      const count = () => (raw.prepare('SELECT COUNT(*) AS n FROM messages').get() as { n: number }).n;
      try {
        // Two acks, then a claim in the same tick: the claim's commit carries them, so the rows are gone
        // before the ack flush (scheduled for the next turn of the loop) runs.
        const a1 = t.ack(got[0]!);
        const a2 = t.ack(got[1]!);
        const more = t.claim(['q'], 2);
        assert.equal(more.length, 2);
        assert.equal(count(), 4, 'the two acked rows were deleted by the claim transaction');
        await Promise.all([a1, a2]);
        for (const d of [...got.slice(2), ...more]) await t.ack(d);
        assert.equal(count(), 0, 'every row acked once, none left');
      } finally {
        raw.close();
      }
    } finally {
      await c.cancel();
      await t.close();
    }
  });
});
