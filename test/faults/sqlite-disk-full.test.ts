// Fault: the SQLite file's filesystem fills up mid-run (a small tmpfs, filled by a ballast file), then
// space is freed. Publishes fail fast with a clear "disk full" error and the client retries them; the
// worker keeps going once space is back. Every accepted task completes; duplicates counted.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, rmSync, writeSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Asynx } from '../../src/index.js';
import { Ledger, Nodes, Progress, publishLedger, recordRow, scaled, scratch, waitFor } from './harness.js';

const FULL_MS = 3_000;

/** Why a tmpfs cannot be mounted here, or null. */
function cannotMount(dir: string): string | null {
  if (process.getuid?.() !== 0) return 'mounting a tmpfs needs root';
  try {
    mkdirSync(dir, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64m', 'tmpfs', dir], { stdio: 'pipe' });
    return null;
  } catch (err) {
    return `cannot mount a tmpfs: ${(err as Error).message.split('\n')[0]}`;
  }
}

/** Writes zeros to `path` until the filesystem is full; returns the bytes written. */
function fill(path: string): number {
  const fd = openSync(path, 'w');
  const chunk = Buffer.alloc(256 * 1024);
  let n = 0;
  try {
    for (;;) n += writeSync(fd, chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
  return n;
}

describe('fault: disk full on the SQLite file system', () => {
  const tmp = scratch('full');
  const mnt = join(tmp.dir, 'mnt');
  const nodes = new Nodes();
  const why = cannotMount(mnt);
  after(async () => {
    await nodes.stopAll();
    if (!why) execFileSync('umount', [mnt]);
    tmp.cleanup();
  });

  it('publishes fail with a clear error while full; all accepted tasks complete once space is back', { skip: why ?? false }, async () => {
    const n = scaled(10_000);
    const brokerUrl = `sqlite://${join(mnt, 'full.db')}`;
    const ledger = new Ledger(join(tmp.dir, 'full.ledger'));
    const client = new Asynx({ brokerUrl, configFile: false, resultBackend: 'none' });
    const t0 = Date.now();
    const ids = await publishLedger(client, Math.floor(n / 2), ledger, 0);
    const node = await nodes.start({ dir: tmp.dir, brokerUrl, name: 'full', concurrency: 2, env: { ASYNX_ACKS_LATE: '1' } });
    const progress = new Progress(ledger);
    await waitFor('20% done', () => ledger.size() >= n * 37 * 0.2, 120_000);
    const ballast = join(mnt, 'ballast');
    fill(ballast);
    const fullAt = Date.now();
    // Publish the second half while the disk is full: refused publishes are retried by the caller.
    let refused = 0;
    let message = '';
    const rest = n - ids.length;
    const freed = sleep(FULL_MS).then(() => rmSync(ballast));
    for (let i = 0; i < rest; i++) {
      for (;;) {
        try {
          ids.push((await client.sendTask('f.ledger', [ledger.path, 0])).id);
          break;
        } catch (err) {
          refused++;
          message ||= (err as Error).message;
          await sleep(50);
        }
      }
    }
    await freed;
    const freedAt = fullAt + FULL_MS;
    await ledger.waitAll(ids, 180_000);
    progress.stop();
    const { lost, duplicated } = ledger.tally(ids);
    recordRow({ fault: `disk full ${FULL_MS / 1000}s (tmpfs)`, broker: 'sqlite', mode: 'acks-late (≥1)', tasks: n, lost, duplicated, dropped: 0, recoverMs: progress.resumeAfter(freedAt), totalMs: Date.now() - t0, note: `${refused} publish attempts refused` });
    await client.close();
    await node.stop();
    assert.ok(refused > 0, 'publishing was refused while the disk was full');
    assert.match(message, /disk is full/, 'the refusal says the disk is full');
    assert.equal(lost, 0);
    assert.equal(ids.length, n);
  });
});
