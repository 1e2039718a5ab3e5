// `asynx init`: the LSB init script run for real, supervisord logs and environment, npm-scripts re-runs, --help examples.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BIN, MULTI_APP, project, runAsynx } from './harness.js';
import { readPidfile } from '../../src/process/pidfile.js';
import { childPidsOf, isAlive, killTree, waitGone } from '../helpers/process.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const ME = execFileSync('id', ['-un'], { encoding: 'utf8' }).trim();

/** Makes `asynx` resolvable from the project as if installed: node_modules/asynx and node_modules/.bin/asynx. */
function install(dir: string): void {
  mkdirSync(join(dir, 'node_modules', '.bin'), { recursive: true });
  symlinkSync(ROOT, join(dir, 'node_modules', 'asynx'));
  symlinkSync(join(ROOT, 'bin', 'asynx'), join(dir, 'node_modules', '.bin', 'asynx'));
}

/** dash, or a loud failure (the Debian package is `dash`). */
function dashPath(): string {
  const found = spawnSync('dash', ['-c', 'exit 0']).status === 0;
  assert.ok(found, 'dash is missing: apt-get install -y dash');
  return 'dash';
}

test('init script: LSB header, force-reload, status 0 / 1 / 3, the project asynx, update-rc.d hint', { timeout: 120_000 }, async (t) => {
  const dash = dashPath();
  const p = project(t);
  install(p.dir);
  const r = await runAsynx(['init', 'initd', '--nodes=w1,w2', `--app=${MULTI_APP}`, '--concurrency=1', '--timeout=20', `--user=${ME}`], p.dir, p.env);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^Next: .*sudo cp \S+asynx\.init\.sh \/etc\/init\.d\/asynx && sudo update-rc\.d asynx defaults/m);
  const script = join(p.dir, 'asynx.init.sh');
  const text = readFileSync(script, 'utf8');
  const header = /^### BEGIN INIT INFO\n([\s\S]*?)^### END INIT INFO$/m.exec(text)?.[1] ?? '';
  for (const field of ['Provides', 'Required-Start', 'Required-Stop', 'Default-Start', 'Default-Stop', 'Short-Description']) {
    assert.match(header, new RegExp(`^# ${field}:\\s+\\S`, 'm'), `LSB header lacks ${field}:\n${text}`);
  }
  assert.match(header, /^# Provides:\s+asynx$/m);
  assert.match(text, /^\s+reload\|force-reload\|graceful\)$/m);
  assert.ok(text.split('\n').includes(`ASYNX_BIN="${process.execPath} ${join(p.dir, 'node_modules', '.bin', 'asynx')}"`), 'runs the project asynx');
  assert.equal(spawnSync(dash, ['-n', script]).status, 0, 'not valid POSIX sh');
  const run = (verb: string) => spawnSync(dash, [script, verb], { cwd: '/', env: p.env, encoding: 'utf8', timeout: 60_000 });
  const strays = new Set<number>();
  t.after(async () => {
    for (const pid of strays) killTree(pid);
    await waitGone([...strays], 5_000);
  });
  const start = run('start');
  assert.equal(start.status, 0, start.stdout + start.stderr);
  const pids = ['w1', 'w2'].map((n) => readPidfile(join(p.runDir, `${n}.pid`))!.pid);
  const cmdline = readFileSync(`/proc/${pids[0]}/cmdline`, 'utf8').split('\0');
  assert.ok(cmdline.includes(join(ROOT, 'bin', 'asynx')), `node runs this package's asynx: ${cmdline.join(' ')}`);
  assert.equal(run('status').status, 0);
  const reload = run('force-reload');
  assert.equal(reload.status, 0, reload.stdout + reload.stderr);
  assert.deepEqual(['w1', 'w2'].map((n) => readPidfile(join(p.runDir, `${n}.pid`))?.pid), pids, 'force-reload restarts pools in place');
  // one node killed -9: some up, some down → 1 (LSB: dead, pidfile left)
  for (const pid of childPidsOf(pids[1]!)) strays.add(pid);
  process.kill(pids[1]!, 'SIGKILL');
  assert.ok(await waitGone([pids[1]!], 5_000));
  const partial = run('status');
  assert.equal(partial.status, 1, partial.stdout + partial.stderr);
  const stop = run('stop');
  assert.equal(stop.status, 0, stop.stdout + stop.stderr);
  assert.ok(!isAlive(pids[0]!));
  const stopped = run('status');
  assert.equal(stopped.status, 3, `LSB: 3 = not running\n${stopped.stdout}${stopped.stderr}`);
  assert.equal(run('stop').status, 0, 'stopping a stopped service succeeds (LSB)');
});

test('supervisord: a log directory of its own, created, and ASYNX_BROKER_URL in environment=', { timeout: 30_000 }, async (t) => {
  const p = project(t);
  const r = await runAsynx(['init', 'supervisord', '--nodes=w1,w2', `--app=${MULTI_APP}`, `--user=${ME}`, '--broker=amqp://u:p%40ss@h:5672//'], p.dir, p.env);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /Next: mkdir -p \S+/);
  const conf = readFileSync(join(p.dir, 'asynx.supervisord.conf'), 'utf8');
  const logs = [...conf.matchAll(/^stdout_logfile=(.*)$/gm)].map((m) => m[1]!);
  const dir = join(p.dir, '.asynx', 'log', 'supervisord');
  assert.deepEqual(logs, [join(dir, 'w1.log'), join(dir, 'w2.log')]);
  // not the file `asynx multi` writes for the same node (--logfile default .asynx/log/%n%I.log)
  for (const log of logs) assert.ok(!log.startsWith(join(p.dir, '.asynx', 'log', 'w')), log);
  assert.ok(statSync(dir).isDirectory(), 'supervisord refuses a program whose log directory is missing');
  assert.equal(conf.match(/^environment=ASYNX_BROKER_URL="amqp:\/\/u:p%%40ss@h:5672\/\/"$/gm)?.length, 2, conf);
  // without --broker the default (a SQLite file in the project) is still explicit for the worker
  const d = await runAsynx(['init', 'supervisord', `--user=${ME}`, '--out=-'], p.dir, p.env);
  assert.match(d.stdout, /^environment=ASYNX_BROKER_URL="sqlite:\/\/\.\/\.asynx\/asynx\.db"$/m);
});

test('npm-scripts: a second run says nothing was added and leaves package.json alone', { timeout: 30_000 }, async (t) => {
  const p = project(t);
  const pkgPath = join(p.dir, 'package.json');
  writeFileSync(pkgPath, JSON.stringify({ name: 'host', private: true, scripts: { test: 'echo hi' } }, null, 2));
  const first = await runAsynx(['init', 'npm-scripts', '--nodes=2'], p.dir, p.env);
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stdout, /^Added scripts to \S+: workers:start, workers:stop, workers:restart, workers:status, workers:kill$/m);
  const after = readFileSync(pkgPath, 'utf8');
  const second = await runAsynx(['init', 'npm-scripts', '--nodes=2'], p.dir, p.env);
  assert.equal(second.code, 0, second.stderr);
  assert.doesNotMatch(second.stdout, /Added/);
  assert.match(second.stdout, /^Nothing added to \S+: every asynx script is already there$/m);
  assert.equal(readFileSync(pkgPath, 'utf8'), after);
  // a changed option: the differing scripts are kept, and nothing is claimed as added
  const third = await runAsynx(['init', 'npm-scripts', '--nodes=3'], p.dir, p.env);
  assert.doesNotMatch(third.stdout, /Added/);
  assert.match(third.stdout, /Kept your existing workers:start, workers:stop, workers:restart, workers:status, workers:kill \(pass --force to replace\)/);
  const forced = await runAsynx(['init', 'npm-scripts', '--nodes=3', '--force'], p.dir, p.env);
  assert.match(forced.stdout, /^Replaced scripts in \S+ \(--force\): workers:start/m);
});

test('asynx init --help: lists --force, and every example in it runs as written', { timeout: 120_000 }, async (t) => {
  const p = project(t);
  const help = await runAsynx(['init', '--help'], p.dir, p.env);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^\s+--force\s+\S/m);
  assert.match(help.stdout, /^Examples:$/m);
  const kindHelp = await runAsynx(['init', 'systemd', '--help'], p.dir, p.env);
  assert.equal(kindHelp.code, 0);
  assert.equal(kindHelp.stdout, help.stdout);
  const examples = [...help.stdout.matchAll(/^\s+\$ asynx (init .*)$/gm)].map((m) => m[1]!);
  assert.ok(examples.length >= 4, help.stdout);
  const kinds = new Set(examples.map((e) => e.split(' ')[1]));
  for (const kind of ['systemd', 'initd', 'supervisord', 'npm-scripts', 'config']) assert.ok(kinds.has(kind), `no example for ${kind}`);
  writeFileSync(join(p.dir, 'package.json'), JSON.stringify({ name: 'host', private: true }, null, 2));
  for (const example of examples) {
    const r = await runAsynx(example.split(' '), p.dir, p.env);
    assert.equal(r.code, 0, `asynx ${example}\n${r.stdout}${r.stderr}`);
  }
  assert.ok(existsSync(join(p.dir, 'asynx@.service')) && existsSync(join(p.dir, 'asynx.init.sh')) && existsSync(join(p.dir, 'asynx.config.mjs')));
  assert.ok(BIN.endsWith('bin/asynx'));
});
