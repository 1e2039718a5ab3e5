// stop / stopwait (timeout, kill-after) / kill / stale pidfiles, against real detached workers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hostname } from 'node:os';
import { MULTI_APP, project } from './harness.js';
import { processStartTime, readPidfile } from '../../src/process/pidfile.js';
import { childPidsOf, isAlive } from '../../src/process/proc.js';
import { waitFor } from '../helpers/tmp.js';

const H = hostname();

/** True once a node logged that it received the task (the worker does not track STARTED by default). */
function received(logDir: string, id: string): boolean {
  return readdirSync(logDir).some((f) => readFileSync(join(logDir, f), 'utf8').includes(`[${id}] received`));
}

test('stopwait while a 3 s task runs: the task finishes SUCCESS, nodes exit, pidfiles removed', { timeout: 90_000 }, async (t) => {
  const p = project(t);
  const start = await p.multi(['start', '2', '-A', MULTI_APP, '-c', '1']);
  assert.equal(start.code, 0, start.stdout);
  const app = p.client();
  const result = await app.sendTask('multi.slow', [3000]);
  await waitFor('a node to receive the task', () => received(p.logDir, result.id), 10_000, 50);
  const stop = await p.multi(['stopwait', '2', '--timeout=30']);
  assert.equal(stop.code, 0, stop.stdout);
  assert.match(stop.stdout, /> Stopping nodes\.\.\.\n\t> asynx1@\S+: TERM -> \d+\n\t> asynx2@\S+: TERM -> \d+\n> Waiting for 2 nodes -> \d+, \d+\.\.\./);
  assert.match(stop.stdout, new RegExp(`\\t> asynx1@${H}: OK`));
  assert.ok(stop.ms >= 1_000, `stopwait returned after ${stop.ms} ms, before the task could finish`);
  const value = (await result.get({ timeout: 10 })) as { ms: number };
  assert.equal(value.ms, 3000);
  assert.equal(await result.state(), 'SUCCESS');
  assert.deepEqual(readdirSync(p.runDir).filter((f) => !f.startsWith('.')), []);
  assert.deepEqual(p.livePids(), []);
});

test('stopwait --timeout reports nodes still alive (exit 1); --kill-after escalates (exit 0)', { timeout: 90_000 }, async (t) => {
  const p = project(t);
  assert.equal((await p.multi(['start', 'w1', 'w2', '-A', MULTI_APP, '-c', '1'])).code, 0);
  const app = p.client();
  const long = await app.sendTask('multi.slow', [20_000], {}, { queue: 'celery' });
  await waitFor('a node to receive the long task', () => received(p.logDir, long.id), 10_000, 50);
  const busy = readPidfile(join(p.runDir, 'w1.pid'))!;
  const timedOut = await p.multi(['stopwait', 'w1', 'w2', '--timeout=1.5']);
  // one node was idle (exits at once), the busy one is still draining
  assert.equal(timedOut.code, 1, timedOut.stdout);
  assert.match(timedOut.stdout, /> Timed out after 1\.5s; still alive: \S+ \(\d+\)\n$/);
  const alive = p.livePids();
  assert.equal(alive.length, 1);
  // still the same process, still draining: the signal was not repeated, nothing was killed
  const killed = await p.multi(['stopwait', 'w1', 'w2', '--kill-after=1']);
  assert.equal(killed.code, 0, killed.stdout);
  assert.match(killed.stdout, /: KILL -> \d+ \(still alive after 1s\)\n/);
  assert.deepEqual(p.livePids(), []);
  assert.ok(!isAlive(alive[0]!));
  assert.ok(busy.pid > 0);
  // the killed node's pidfile was cleaned up by multi
  assert.deepEqual(readdirSync(p.runDir).filter((f) => f.endsWith('.pid')), []);
});

test('--kill-after equal to --timeout: the KILL still gets its moment, exit 0', { timeout: 60_000 }, async (t) => {
  const p = project(t);
  assert.equal((await p.multi(['start', 'w1', '-A', MULTI_APP, '-c', '1'])).code, 0);
  const long = await p.client().sendTask('multi.slow', [20_000]);
  await waitFor('the node to receive the long task', () => received(p.logDir, long.id), 10_000, 50);
  const r = await p.multi(['stopwait', 'w1', '--timeout=1', '--kill-after=1']);
  assert.equal(r.code, 0, r.stdout);
  assert.match(r.stdout, /: KILL -> \d+ \(still alive after 1s\)\n\t> w1@\S+: OK\n$/);
  assert.deepEqual(p.livePids(), []);
});

test('kill sends KILL to main and pool children and removes their pidfiles; stop -INT; DOWN nodes', { timeout: 90_000 }, async (t) => {
  const p = project(t);
  assert.equal((await p.multi(['start', '3', '-A', MULTI_APP, '-c', '2'])).code, 0);
  const main1 = readPidfile(join(p.runDir, 'asynx1.pid'))!.pid;
  const pool1 = childPidsOf(main1);
  assert.equal(pool1.length, 2);
  const stop = await p.multi(['stop', '3', '-INT', '-c:3', '4']);
  assert.equal(stop.code, 0, stop.stdout);
  assert.match(stop.stdout, new RegExp(`> Stopping nodes\\.\\.\\.\\n\\t> asynx1@${H}: INT -> ${main1}\\n`));
  await waitFor('nodes to stop after INT', () => p.livePids().length === 0, 20_000, 50);
  assert.equal((await p.multi(['start', '3', '-A', MULTI_APP, '-c', '2'])).code, 0);
  const mains = p.livePids();
  const pools = mains.flatMap((pid) => childPidsOf(pid));
  assert.equal(pools.length, 6);
  const kill = await p.multi(['kill', 'asynx1', 'asynx2', 'asynx3', 'asynx9']);
  assert.equal(kill.code, 0, kill.stdout);
  assert.match(kill.stdout, new RegExp(`^asynx multi v\\S+\\nSending KILL to node asynx1@${H} \\(\\d+\\)\\nSending KILL to node asynx2@${H} \\(\\d+\\)\\nSending KILL to node asynx3@${H} \\(\\d+\\)\\n> asynx9@${H}: DOWN\\n$`));
  for (const pid of [...mains, ...pools]) assert.ok(!isAlive(pid), `pid ${pid} survived KILL`);
  assert.deepEqual(readdirSync(p.runDir).filter((f) => f.endsWith('.pid') || f.endsWith('.json')), []);
  const down = await p.multi(['stop', '3']);
  assert.equal(down.stdout, `asynx multi v0.1.0\n> asynx1@${H}: DOWN\n> asynx2@${H}: DOWN\n> asynx3@${H}: DOWN\n`);
});

test('stale pidfiles (dead pid, reused live pid) never block a start and are never signalled', { timeout: 90_000 }, async (t) => {
  const p = project(t);
  const sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
  const sleepPid = sleeper.pid!;
  p.track(sleepPid);
  const dead = spawn('true');
  await new Promise((r) => dead.on('exit', r));
  const run = join(p.dir, '.asynx', 'run');
  await import('node:fs').then((fs) => fs.mkdirSync(run, { recursive: true }));
  // w1: a dead pid; w2: a live `sleep` recorded with another start time (pid reused); w3: a Celery-style file
  writeFileSync(join(run, 'w1.pid'), `${dead.pid}\nnode=w1@${H}\nstart=1\n`);
  writeFileSync(join(run, 'w2.pid'), `${sleepPid}\nnode=w2@${H}\nstart=${processStartTime(sleepPid)! + 7}\n`);
  writeFileSync(join(run, 'w3.pid'), `${dead.pid}\n`);
  const status = await p.multi(['status', 'w1', 'w2', 'w3']);
  assert.equal(status.code, 1);
  assert.match(status.stdout, new RegExp(`> w2@${H}: stale pidfile removed \\(pid ${sleepPid} now belongs to another process`));
  assert.match(status.stdout, new RegExp(`w1@${H}\\s+stale pidfile\\s+${dead.pid}`));
  assert.ok(!existsSync(join(run, 'w1.pid')) && !existsSync(join(run, 'w2.pid')));
  // the same files again, now in front of stop and start
  writeFileSync(join(run, 'w1.pid'), `${dead.pid}\nnode=w1@${H}\nstart=1\n`);
  writeFileSync(join(run, 'w2.pid'), `${sleepPid}\nnode=w2@${H}\nstart=${processStartTime(sleepPid)! + 7}\n`);
  const stop = await p.multi(['stop', 'w1', 'w2']);
  assert.equal(stop.code, 0);
  assert.doesNotMatch(stop.stdout, /Stopping nodes|TERM/);
  assert.ok(isAlive(sleepPid), 'the sleep that reused the pid was signalled');
  writeFileSync(join(run, 'w2.pid'), `${sleepPid}\nnode=w2@${H}\nstart=${processStartTime(sleepPid)! + 7}\n`);
  const start = await p.multi(['start', 'w2', '-A', MULTI_APP, '-c', '1']);
  assert.equal(start.code, 0, start.stdout);
  assert.match(start.stdout, new RegExp(`> w2@${H}: stale pidfile removed \\(pid ${sleepPid} now belongs to another process: .*\\n\\t> w2@${H}: OK\\n`));
  assert.notEqual(readPidfile(join(run, 'w2.pid'))?.pid, sleepPid);
  const kill = await p.multi(['kill', 'w2']);
  assert.equal(kill.code, 0);
  assert.ok(isAlive(sleepPid), 'the sleep was killed');
  // a symlinked pidfile is refused, not followed
  const { symlinkSync } = await import('node:fs');
  writeFileSync(join(p.dir, 'target'), `${sleepPid}\n`);
  symlinkSync(join(p.dir, 'target'), join(run, 'w5.pid'));
  const sym = await p.multi(['start', 'w5', '-A', MULTI_APP]);
  assert.equal(sym.code, 1);
  assert.match(sym.stdout, /FAILED\n\t\tPidfile .*w5\.pid is a symbolic link/);
  const symStop = await p.multi(['kill', 'w5']);
  assert.ok(isAlive(sleepPid));
  assert.equal(symStop.code, 1);
});
