// The multi CLI surface: usage and exit codes, colour rules, -q, --verbose, data commands, logfiles per node.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hostname } from 'node:os';
import { Writable } from 'node:stream';
import { MULTI_APP, project, runAsynx } from './harness.js';
import { runMultiCli } from '../../src/cli/multi.js';
import { waitFor } from '../helpers/tmp.js';
import { processStartTime } from '../../src/process/pidfile.js';
import { statusPathFor, writeStatus, type NodeStatus } from '../../src/process/status-file.js';

const H = hostname();

/** Runs the CLI in-process, capturing output. */
async function inProcess(argv: string[], opts: { isTTY?: boolean; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const sink = (append: (s: string) => void) => new Writable({ write(chunk, _e, cb) { append(String(chunk)); cb(); } });
  const code = await runMultiCli(argv, {
    stdout: sink((s) => (stdout += s)), stderr: sink((s) => (stderr += s)),
    env: opts.env ?? {}, isTTY: opts.isTTY ?? false, cwd: opts.cwd ?? '/nonexistent-asynx-test',
  });
  return { code, stdout, stderr };
}

const ANSI = /\u001b\[/;

test('usage and exit codes: no command, unknown command, help, bad index, %x, spaced long value, get unknown', async () => {
  const none = await inProcess([]);
  assert.equal(none.code, 64);
  assert.match(none.stdout, /^asynx multi v\S+\nUsage: asynx multi start/);
  const bad = await inProcess(['frobnicate', '3']);
  assert.equal(bad.code, 64);
  assert.equal(bad.stderr, 'Invalid command: frobnicate\n');
  const help = await inProcess(['help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /Examples:/);
  assert.equal((await inProcess(['show', '3', '-c:4', '2'])).code, 64);
  assert.equal((await inProcess(['expand', 'x%y', '2'])).code, 64);
  const spaced = await inProcess(['start', '2', '--workdir', '/srv/app']);
  assert.equal(spaced.code, 64);
  assert.match(spaced.stderr, /did you mean --workdir=\/srv\/app\?/);
  const get = await inProcess(['get', 'asynx9@x', '3', '--hostname=x']);
  assert.equal(get.code, 1);
  assert.equal(get.stdout, '');
});

test('data commands create nothing on disk and follow node order', async (t) => {
  const p = project(t);
  const names = await inProcess(['names', 'c', 'a', 'b', '--hostname=h'], { cwd: p.dir });
  assert.equal(names.stdout, 'c@h\na@h\nb@h\n');
  const show = await inProcess(['show', '2', '-c', '3', '--hostname=h'], { cwd: p.dir });
  assert.equal(show.code, 0);
  assert.match(show.stdout, /^\S+ \S+bin\/asynx worker --detach -c 3 -n asynx1@h --pidfile=\.\/\.asynx\/run\/asynx1\.pid --logfile=\.\/\.asynx\/log\/asynx1%I\.log\n/);
  const get = await inProcess(['get', 'asynx2@h', '2', '--hostname=h'], { cwd: p.dir });
  assert.match(get.stdout, /^\S+bin\/asynx worker --detach -n asynx2@h /);
  const expand = await inProcess(['expand', '%n.log', '2', '--hostname=h'], { cwd: p.dir });
  assert.equal(expand.stdout, 'asynx1.log\nasynx2.log\n');
  assert.equal((await inProcess(['status', '2'], { cwd: p.dir })).code, 1);
  assert.equal((await inProcess(['stop', '2'], { cwd: p.dir })).code, 0);
  assert.deepEqual(readdirSync(p.dir), [], 'a read-only command created files');
});

test('colour only on a TTY; NO_COLOR and --no-color turn it off; -q and --nosplash', async (t) => {
  const p = project(t);
  const opts = { cwd: p.dir };
  assert.match((await inProcess(['stop', '1'], { ...opts, isTTY: true })).stdout, ANSI);
  assert.doesNotMatch((await inProcess(['stop', '1'], { ...opts, isTTY: false })).stdout, ANSI);
  assert.doesNotMatch((await inProcess(['stop', '1'], { ...opts, isTTY: true, env: { NO_COLOR: '1' } })).stdout, ANSI);
  assert.doesNotMatch((await inProcess(['--no-color', 'stop', '1'], { ...opts, isTTY: true })).stdout, ANSI);
  assert.equal((await inProcess(['stop', '1', '-q'], opts)).stdout, '');
  assert.equal((await inProcess(['stop', '1', '--nosplash'], opts)).stdout, `> asynx1@${H}: DOWN\n`);
  // -q hides progress, not data
  assert.equal((await inProcess(['-q', 'names', '1', '--hostname=h'], opts)).stdout, 'asynx1@h\n');
});

test('real nodes: --verbose, -q start, per-node logfiles, USR2 reopen, size rotation', { timeout: 90_000 }, async (t) => {
  const p = project(t);
  const start = await p.multi(['start', 'w1', '-A', MULTI_APP, '-c', '2', '--verbose', '--append=--logfile-max-size=4000 --logfile-keep=2']);
  assert.equal(start.code, 0, start.stdout + start.stderr);
  assert.match(start.stdout, new RegExp(`\\t> w1@${H}: \\S+ \\S+bin/asynx worker --detach -A \\S+ -c 2 -n w1@${H} --pidfile=\\S+ --logfile=\\./\\.asynx/log/w1%I\\.log --logfile-max-size=4000 --logfile-keep=2\\n\\t> w1@${H}: OK\\n`));
  // %I: the main process and each pool child log to their own file
  assert.deepEqual(readdirSync(p.logDir).sort(), ['w1-1.log', 'w1-2.log', 'w1.log']);
  // -q: nothing printed, exit code still tells
  const quiet = await p.multi(['start', 'w1', '-A', MULTI_APP, '-q']);
  assert.deepEqual([quiet.code, quiet.stdout], [0, '']);
  // rotation by an external tool: move the file, USR2 through multi stop, the node reopens its log
  renameSync(join(p.logDir, 'w1.log'), join(p.logDir, 'w1.log.old'));
  const usr2 = await p.multi(['stop', 'w1', '-USR2']);
  assert.match(usr2.stdout, new RegExp(`\\t> w1@${H}: USR2 -> \\d+\\n`));
  const app = p.client();
  const sent = await Promise.all(Array.from({ length: 40 }, (_, i) => app.sendTask('multi.add', [i, 1])));
  await Promise.all(sent.map((r) => r.get({ timeout: 20 })));
  await waitFor('the node to log into a fresh w1.log', () => existsSync(join(p.logDir, 'w1.log')) && readFileSync(join(p.logDir, 'w1.log'), 'utf8').length > 0, 10_000, 50);
  // built-in size rotation: 40 tasks log well over 4000 bytes
  await waitFor('w1.log.1 from size rotation', () => existsSync(join(p.logDir, 'w1.log.1')), 10_000, 50);
  assert.ok(!existsSync(join(p.logDir, 'w1.log.3')));
  assert.equal((await p.multi(['stopwait', 'w1', '--timeout=20'])).code, 0);
});

test('status rows follow the node lifecycle in its status file: starting, stopping, up', async (t) => {
  const p = project(t);
  const sleeper = spawn('sleep', ['30'], { stdio: 'ignore' });
  const pid = sleeper.pid!;
  p.track(pid);
  mkdirSync(p.runDir, { recursive: true });
  writeFileSync(join(p.runDir, 'w1.pid'), `${pid}\nnode=w1@h\nstart=${processStartTime(pid)}\n`);
  const status = (state: NodeStatus['state']): NodeStatus => ({ node: 'w1@h', pid, state, concurrency: 3, childPids: [], processed: 7, active: 1, queues: ['celery'], broker: 'sqlite://x', startedAt: Date.now() - 65_000, updatedAt: Date.now() });
  const rows = async () => JSON.parse((await inProcess(['status', 'w1', '--hostname=h', '--json'], { cwd: p.dir })).stdout) as Array<{ state: string; pid: number; concurrency: number; processed: number; uptimeMs: number }>;
  assert.equal((await rows())[0]?.state, 'starting', 'pidfile without a status file yet');
  writeStatus(statusPathFor(join(p.runDir, 'w1.pid')), { ...status('draining'), shutdown: 'warm' });
  assert.equal((await rows())[0]?.state, 'stopping');
  // draining with no shutdown requested is a HUP pool restart in place
  writeStatus(statusPathFor(join(p.runDir, 'w1.pid')), status('draining'));
  assert.equal((await rows())[0]?.state, 'restarting');
  writeStatus(statusPathFor(join(p.runDir, 'w1.pid')), status('running'));
  const [row] = await rows();
  assert.deepEqual([row?.state, row?.pid, row?.concurrency, row?.processed], ['up', pid, 3, 7]);
  assert.ok(row!.uptimeMs >= 65_000);
  const table = await inProcess(['status', 'w1', '--hostname=h'], { cwd: p.dir });
  assert.equal(table.code, 0);
  assert.match(table.stdout, new RegExp(`\\nw1@h\\s+up\\s+${pid}\\s+1m0[5-9]s\\s+\\S+\\s+\\S+\\s+3\\s+1\\s+7\\n$`));
});

test('the asynx binary routes `asynx multi` here', { timeout: 30_000 }, async (t) => {
  const p = project(t);
  const r = await runAsynx(['multi', 'names', '2', '--hostname=h'], p.dir, p.env);
  assert.deepEqual([r.code, r.stdout], [0, 'asynx1@h\nasynx2@h\n']);
});
