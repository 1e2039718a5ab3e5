// Status file round trip and log file rotation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readStatus, removeStatus, statusPathFor, writeStatus, type NodeStatus } from '../../src/process/status-file.js';
import { LogFile } from '../../src/process/logfile.js';
import { AsynxError } from '../../src/errors.js';

function tmp(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'asynx-unit-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('status file: atomic write, read back, remove', (t) => {
  const dir = tmp(t);
  const path = statusPathFor(join(dir, 'w1.pid'));
  assert.equal(path, join(dir, 'w1.pid.status.json'));
  assert.equal(readStatus(path), null);
  const status: NodeStatus = { node: 'w1@h', pid: 42, state: 'running', concurrency: 2, childPids: [43, 44], processed: 5, active: 1, queues: ['celery'], broker: 'sqlite:///x', startedAt: 1, updatedAt: 2 };
  writeStatus(path, status);
  assert.deepEqual(readStatus(path), status);
  assert.deepEqual(readdirSync(dir), ['w1.pid.status.json']);
  writeStatus(path, { ...status, state: 'failed', error: 'boom' });
  assert.equal(readStatus(path)?.error, 'boom');
  writeFileSync(path, '{"half":');
  assert.equal(readStatus(path), null);
  removeStatus(path);
  removeStatus(path);
  assert.equal(existsSync(path), false);
});

test('logfile: append, size rotation keeps N files', (t) => {
  const dir = tmp(t);
  const path = join(dir, 'sub', 'w1.log');
  const log = new LogFile(path, { maxSize: 20, keep: 2 });
  for (let i = 0; i < 6; i++) log.write(`line-${i}-xxxxxx\n`); // 15 bytes each: one line per file
  log.close();
  assert.equal(readFileSync(path, 'utf8'), 'line-5-xxxxxx\n');
  assert.equal(readFileSync(`${path}.1`, 'utf8'), 'line-4-xxxxxx\n');
  assert.equal(readFileSync(`${path}.2`, 'utf8'), 'line-3-xxxxxx\n');
  assert.equal(existsSync(`${path}.3`), false);
});

test('logfile: reopen after an external move', (t) => {
  const dir = tmp(t);
  const path = join(dir, 'w1.log');
  const log = new LogFile(path);
  log.write('a\n');
  rmSync(path);
  log.reopen();
  log.write('b\n');
  log.close();
  assert.equal(readFileSync(path, 'utf8'), 'b\n');
});

test('logfile: unwritable directory gives a clear error', (t) => {
  const dir = tmp(t);
  // A regular file where a directory should be: fails for root too (chmod would not).
  writeFileSync(join(dir, 'blocker'), '');
  assert.throws(() => new LogFile(join(dir, 'blocker', 'sub', 'w1.log')), (err: unknown) => err instanceof AsynxError && err.code === 'asynx.logfile.dirUnwritable' && /--logfile=/.test(err.message));
});
