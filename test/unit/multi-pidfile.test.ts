// Pidfiles: format, exclusive create, stale detection (dead pid, reused pid via a real `sleep`), symlink refusal.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { acquirePidfile, inspectPidfile, processStartTime, readPidfile } from '../../src/process/pidfile.js';
import { AsynxError } from '../../src/errors.js';

function tmp(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'asynx-pid-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A real process whose pid we can plant in a pidfile; killed by pid when the test ends. */
function sleeper(t: { after(fn: () => void): void }): number {
  const child = spawn('sleep', ['30'], { stdio: 'ignore' });
  const pid = child.pid as number;
  t.after(() => { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } });
  return pid;
}

test('acquire writes pid, node, start time; remove only removes our own file', (t) => {
  const dir = tmp(t);
  const path = join(dir, 'run', 'w1.pid');
  const held = acquirePidfile(path, 'w1@h');
  const text = readFileSync(path, 'utf8');
  assert.equal(text.split('\n')[0], String(process.pid));
  assert.deepEqual(readPidfile(path), { pid: process.pid, node: 'w1@h', startTime: processStartTime(process.pid) });
  assert.ok(processStartTime(process.pid)! > 0);
  assert.deepEqual(inspectPidfile(path), { state: 'alive', record: readPidfile(path) });
  held.remove();
  held.remove();
  assert.equal(existsSync(path), false);
  // a file rewritten by someone else is left alone
  const again = acquirePidfile(path, 'w1@h');
  writeFileSync(path, '1\n');
  again.remove();
  assert.equal(readFileSync(path, 'utf8'), '1\n');
});

test('a live same node blocks with alreadyRunning (exit 73)', (t) => {
  const dir = tmp(t);
  const path = join(dir, 'w1.pid');
  const pid = sleeper(t);
  writeFileSync(path, `${pid}\nnode=w1@h\nstart=${processStartTime(pid)}\n`);
  assert.throws(() => acquirePidfile(path, 'w1@h'), (err: unknown) => err instanceof AsynxError && err.code === 'asynx.pidfile.alreadyRunning' && err.exitCode === 73 && err.facts.pid === pid && err.facts.path === path);
  assert.equal(readPidfile(path)?.pid, pid);
});

test('stale pidfiles are removed with a notice: dead pid, reused pid, other node, broken', async (t) => {
  const dir = tmp(t);
  const path = join(dir, 'w1.pid');
  const notices: string[] = [];
  const cases: Array<[string, string]> = [];
  // dead pid: a process that has exited
  const dead = spawn('true');
  await new Promise((r) => dead.on('exit', r));
  cases.push(['dead', `${dead.pid}\nnode=w1@h\nstart=1\n`]);
  // reused pid: a live `sleep` whose start time differs from the recorded one
  const live = sleeper(t);
  cases.push(['reused', `${live}\nnode=w1@h\nstart=${processStartTime(live)! + 1}\n`]);
  cases.push(['other node', `${live}\nnode=w2@h\nstart=${processStartTime(live)}\n`]);
  cases.push(['broken', 'abc\n']);
  cases.push(['partial', '123']);
  for (const [name, content] of cases) {
    writeFileSync(path, content);
    assert.equal(inspectPidfile(path, 'w1@h').state, 'stale', name);
    const held = acquirePidfile(path, 'w1@h', (m) => notices.push(m));
    assert.equal(readPidfile(path)?.pid, process.pid, name);
    held.remove();
  }
  assert.equal(notices.length, 5);
  assert.match(notices[0]!, /^Stale pidfile exists - Removing it\./);
  assert.match(notices[3]!, /^Broken pidfile found - Removing it\./);
  // the live sleep was never signalled
  assert.doesNotThrow(() => process.kill(live, 0));
});

test('a Celery-style pid-only file with a live pid counts as alive', (t) => {
  const dir = tmp(t);
  const path = join(dir, 'w1.pid');
  const pid = sleeper(t);
  writeFileSync(path, ` ${pid} \n`);
  assert.equal(inspectPidfile(path).state, 'alive');
  assert.equal(inspectPidfile(join(dir, 'none.pid')).state, 'absent');
});

test('symlinked pidfile paths are refused', (t) => {
  const dir = tmp(t);
  const target = join(dir, 'target');
  writeFileSync(target, 'keep\n');
  const path = join(dir, 'w1.pid');
  symlinkSync(target, path);
  assert.throws(() => acquirePidfile(path, 'w1@h'), (err: unknown) => err instanceof AsynxError && err.code === 'asynx.pidfile.symlink');
  assert.throws(() => inspectPidfile(path), AsynxError);
  assert.equal(readFileSync(target, 'utf8'), 'keep\n');
});

test('uncreatable directory names the path and --pidfile', (t) => {
  const dir = tmp(t);
  writeFileSync(join(dir, 'blocker'), '');
  assert.throws(() => acquirePidfile(join(dir, 'blocker', 'run', 'w1.pid'), 'w1@h'), (err: unknown) => err instanceof AsynxError && err.code === 'asynx.pidfile.dirUnwritable' && err.message.includes(join(dir, 'blocker', 'run')) && err.message.includes('--pidfile'));
});
