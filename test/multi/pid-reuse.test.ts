// Pid reuse with pid-only pidfiles (issue 8 defect 1): a live process that is not the node is a stale pidfile.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hostname } from 'node:os';
import { MULTI_APP, project } from './harness.js';
import { readPidfile } from '../../src/process/pidfile.js';
import { isAlive } from '../../src/process/proc.js';
import { waitFor } from '../helpers/tmp.js';

const H = hostname();

test('a bare pidfile naming a live `sleep`: status stale; stop/stopwait/kill never signal it; start replaces it', { timeout: 90_000 }, async (t) => {
  const p = project(t);
  const sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
  const sleepPid = sleeper.pid!;
  p.track(sleepPid);
  mkdirSync(p.runDir, { recursive: true });
  const plant = (): void => writeFileSync(join(p.runDir, 'asynx2.pid'), `${sleepPid}\n`);
  const stale = new RegExp(`> asynx2@${H}: stale pidfile removed \\(pid ${sleepPid} is 'sleep 60', not an asynx worker: \\S+asynx2\\.pid\\); pid ${sleepPid} not signalled\\n> asynx2@${H}: DOWN\\n`);

  plant();
  const status = await p.multi(['status', 'asynx2']);
  assert.equal(status.code, 1, status.stdout);
  assert.match(status.stdout, new RegExp(`asynx2@${H}\\s+stale pidfile\\s+${sleepPid}\\s`));
  for (const verb of ['stop', 'stopwait', 'kill']) {
    plant();
    const r = await p.multi([verb, 'asynx2', '--timeout=5']);
    assert.match(r.stdout, stale, `${verb}:\n${r.stdout}`);
    assert.doesNotMatch(r.stdout, /TERM ->|Sending KILL|\bOK\b/, verb);
    assert.ok(isAlive(sleepPid), `${verb} signalled the unrelated sleep`);
  }
  plant();
  const restart = await p.multi(['restart', 'asynx2', '-A', MULTI_APP, '-c', '1']);
  assert.ok(isAlive(sleepPid), 'restart signalled the unrelated sleep');
  assert.match(restart.stdout, /stale pidfile removed/);
  assert.equal((await p.multi(['kill', 'asynx2'])).code, 0);
  await waitFor('asynx2 to be gone', () => p.livePids().length === 0, 10_000, 50);

  plant();
  const start = await p.multi(['start', '2', '-A', MULTI_APP, '-c', '1']);
  assert.equal(start.code, 0, start.stdout + start.stderr);
  assert.match(start.stdout, new RegExp(`stale pidfile removed \\(pid ${sleepPid} is 'sleep 60', not an asynx worker[^\\n]*\\n[\\s\\S]*\\t> asynx2@${H}: OK\\n`));
  assert.doesNotMatch(start.stdout, /already running/);
  const rec = readPidfile(join(p.runDir, 'asynx2.pid'));
  assert.ok(rec !== null && rec.pid !== sleepPid && isAlive(rec.pid));
  assert.ok(isAlive(sleepPid));
  assert.equal((await p.multi(['stopwait', '2', '--timeout=20'])).code, 0);
  assert.ok(isAlive(sleepPid));
});

test('a bare pidfile whose pid is the asynx worker for that node is still running (command-line match)', { timeout: 90_000 }, async (t) => {
  const p = project(t);
  assert.equal((await p.multi(['start', 'w1', 'w2', '-A', MULTI_APP, '-c', '1'])).code, 0);
  const w1 = readPidfile(join(p.runDir, 'w1.pid'))!.pid;
  const w2 = readPidfile(join(p.runDir, 'w2.pid'))!.pid;
  // as an init script or an older version would write them; w2's file names w1's worker: not w2's process
  writeFileSync(join(p.runDir, 'w1.pid'), `${w1}\n`);
  writeFileSync(join(p.runDir, 'w2.pid'), `${w1}\n`);
  const status = await p.multi(['status', 'w1', 'w2']);
  assert.match(status.stdout, new RegExp(`w1@${H}\\s+up\\s+${w1}\\s`));
  assert.match(status.stdout, new RegExp(`pid ${w1} is the asynx worker for w1@${H}, not w2@${H}`));
  const again = await p.multi(['start', 'w1', '-A', MULTI_APP, '-c', '1']);
  assert.match(again.stdout, new RegExp(`\\t> w1@${H}: already running \\(pid ${w1}\\)`));
  const stop = await p.multi(['stopwait', 'w1', '--timeout=20']);
  assert.equal(stop.code, 0, stop.stdout);
  assert.match(stop.stdout, new RegExp(`\\t> w1@${H}: TERM -> ${w1}\\n`));
  assert.ok(!isAlive(w1));
  assert.ok(isAlive(w2), 'w2 lost its pidfile, but nothing signalled it');
  p.track(w2);
});
