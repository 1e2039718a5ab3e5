// Pidfiles: format, exclusive create, stale detection (dead pid, reused pid via a real `sleep`), symlink refusal.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { acquirePidfile, inspectPidfile, processStartTime, readPidfile } from '../../src/process/pidfile.js';
import { AsynxError } from '../../src/errors.js';
import { isWorkerArgvFor, parseWorkerArgv } from '../../src/process/worker-argv.js';

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

test('a pid-only file counts as alive only when the pid is an asynx worker for the node (command line)', (t) => {
  const dir = tmp(t);
  const path = join(dir, 'w1.pid');
  const pid = sleeper(t);
  // issue 8 defect 1: a bare pid of an unrelated live process (here a `sleep`) is a stale pidfile, not a running node
  writeFileSync(path, ` ${pid} \n`);
  const seen = inspectPidfile(path);
  assert.equal(seen.state, 'stale');
  assert.match(seen.state === 'stale' ? seen.reason : '', new RegExp(`pid ${pid} is 'sleep 30', not an asynx worker`));
  assert.equal(inspectPidfile(path, 'w1@h').state, 'stale');
  assert.equal(inspectPidfile(join(dir, 'none.pid')).state, 'absent');
  // the worker's own acquisition applies the same rule: it replaces the file and never signals the sleep
  const notices: string[] = [];
  const held = acquirePidfile(path, 'w1@h', (m) => notices.push(m));
  assert.equal(readPidfile(path)?.pid, process.pid);
  held.remove();
  assert.match(notices[0] ?? '', /^Stale pidfile exists - Removing it\..*not an asynx worker/);
  assert.doesNotThrow(() => process.kill(pid, 0));
});

test('worker command lines: node from -n/--hostname (default asynx@%h), logfile, pidfile; anything else is no worker', () => {
  const bin = '/opt/app/node_modules/asynx/bin/asynx';
  assert.deepEqual(parseWorkerArgv(['/usr/bin/node', bin, 'worker', '-A', 't.mjs', '-n', 'w1@h', '--pidfile=/r/w1.pid', '--logfile=log/%n%I.log']), { node: 'w1@h', logfile: 'log/%n%I.log', pidfile: '/r/w1.pid' });
  assert.equal(parseWorkerArgv(['node', bin, 'worker', '--hostname=w2@%h'])?.node, `w2@${hostname()}`);
  assert.equal(parseWorkerArgv(['node', bin, 'worker', '-nw3@h', '-f', 'x.log'])?.logfile, 'x.log');
  assert.equal(parseWorkerArgv(['node', bin, 'worker'])?.node, `asynx@${hostname()}`);
  // options after `--` are the worker's overrides, not its own flags
  assert.equal(parseWorkerArgv(['node', bin, 'worker', '-n', 'a@h', '--', '-n', 'b@h'])?.node, 'a@h');
  assert.equal(parseWorkerArgv(['sleep', '30']), null);
  assert.equal(parseWorkerArgv(['node', bin, 'multi', 'start', 'w1']), null);
  assert.equal(parseWorkerArgv(['node', bin, 'multi', 'start', 'worker']), null);
  assert.equal(parseWorkerArgv(['node', '/srv/other/worker.js', 'worker']), null);
  assert.ok(isWorkerArgvFor(['node', bin, 'worker', '-n', 'w1@h'], 'w1@h'));
  assert.ok(!isWorkerArgvFor(['node', bin, 'worker', '-n', 'w1@h'], 'w2@h'));
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
