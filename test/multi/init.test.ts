// `asynx init`: every template rendered; initd, npm-scripts and config used for real.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MULTI_APP, project, runAsynx } from './harness.js';
import { readPidfile } from '../../src/process/pidfile.js';
import { isAlive } from '../../src/process/proc.js';
import { waitFor } from '../helpers/tmp.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Makes `asynx` resolvable from the project as if installed: node_modules/asynx and node_modules/.bin/asynx. */
function install(dir: string): void {
  mkdirSync(join(dir, 'node_modules', '.bin'), { recursive: true });
  symlinkSync(ROOT, join(dir, 'node_modules', 'asynx'));
  symlinkSync(join(ROOT, 'bin', 'asynx'), join(dir, 'node_modules', '.bin', 'asynx'));
}

test('systemd multi unit: forking, multi start/stopwait, reload by HUP, KillMode=mixed, % escaped for systemd', { timeout: 30_000 }, async (t) => {
  const p = project(t);
  const r = await runAsynx(['init', 'systemd', '--nodes=w1,w2', '--app=./tasks.mjs', '--concurrency=4', '--user=svc', '--timeout=60'], p.dir, p.env);
  assert.equal(r.code, 0, r.stderr);
  const unit = readFileSync(join(p.dir, 'asynx.service'), 'utf8');
  for (const line of ['Type=forking', 'User=svc', `WorkingDirectory=${p.dir}`, 'KillMode=mixed', 'Environment=ASYNX_NODES="w1 w2"', 'Environment=ASYNX_OPTS="-A ./tasks.mjs -c 4 -l info"', `Environment=ASYNX_PIDFILE=${p.dir}/.asynx/run/%%n.pid`, 'TimeoutStopSec=90']) {
    assert.ok(unit.split('\n').includes(line), `missing ${line}\n${unit}`);
  }
  assert.match(unit, /^ExecStart=\S+node\S* \S+bin\/asynx multi start \$ASYNX_NODES \$ASYNX_OPTS --pidfile=\$\{ASYNX_PIDFILE\}/m);
  assert.match(unit, /^ExecStop=.* multi stopwait \$ASYNX_NODES .*--kill-after=60 --timeout=75$/m);
  assert.match(unit, /^ExecReload=.* multi stop \$ASYNX_NODES -HUP --pidfile=\$\{ASYNX_PIDFILE\}$/m);
  assert.doesNotMatch(unit, /\{\{/);
  // refuses to overwrite
  const again = await runAsynx(['init', 'systemd', '--user=svc'], p.dir, p.env);
  assert.equal(again.code, 64);
  assert.match(again.stderr, /already exists: pass --force/);
  const bad = await runAsynx(['init', 'launchd'], p.dir, p.env);
  assert.equal(bad.code, 64);
  assert.match(bad.stderr, /use one of systemd, initd, supervisord, npm-scripts, config/);
});

test('supervisord: one foreground worker program per node, TERM to the worker only', { timeout: 30_000 }, async (t) => {
  const p = project(t);
  const r = await runAsynx(['init', 'supervisord', '--nodes=3', '--app=./tasks.mjs', '--user=svc', '--out=-'], p.dir, p.env);
  assert.equal(r.code, 0, r.stderr);
  const programs = r.stdout.match(/^\[program:[^\]]+\]$/gm);
  assert.deepEqual(programs, ['[program:asynx-asynx1]', '[program:asynx-asynx2]', '[program:asynx-asynx3]']);
  assert.match(r.stdout, /^programs=asynx-asynx1,asynx-asynx2,asynx-asynx3$/m);
  assert.match(r.stdout, /^command=\S+ \S+bin\/asynx worker -A \.\/tasks\.mjs -n asynx2@%\(host_node_name\)s -c 2 -l info$/m);
  assert.equal(r.stdout.match(/^stopasgroup=false$/gm)?.length, 3);
  assert.doesNotMatch(r.stdout, /\{\{/);
  for (const cmd of r.stdout.match(/^command=.*$/gm) ?? []) assert.doesNotMatch(cmd, /--detach| multi /);
  // the rendered command really runs a foreground worker (host name filled in as supervisord would)
  const command = /^command=(.*asynx1.*)$/m.exec(r.stdout)![1]!.replace('%(host_node_name)s', 'localhost').replace('./tasks.mjs', MULTI_APP).split(' ');
  const help = spawnSync(command[0]!, [...command.slice(1), '--help'], { cwd: p.dir, env: p.env, encoding: 'utf8', timeout: 15_000 });
  assert.equal(help.status, 0, help.stderr);
});

test('init script: POSIX sh, start / status / stop for real', { timeout: 90_000 }, async (t) => {
  const p = project(t);
  const r = await runAsynx(['init', 'initd', '--nodes=w1,w2', `--app=${MULTI_APP}`, '--concurrency=1', '--timeout=20', `--user=${execFileSync('id', ['-un'], { encoding: 'utf8' }).trim()}`], p.dir, p.env);
  assert.equal(r.code, 0, r.stderr);
  const script = join(p.dir, 'asynx.init.sh');
  assert.equal(statSync(script).mode & 0o777, 0o755);
  assert.equal(spawnSync('dash', ['-n', script]).status, 0, 'not valid POSIX sh');
  const run = (verb: string) => spawnSync('dash', [script, verb], { cwd: '/', env: p.env, encoding: 'utf8', timeout: 60_000 });
  const start = run('start');
  assert.equal(start.status, 0, start.stdout + start.stderr);
  assert.match(start.stdout, /\t> w1@\S+: OK\n\t> w2@\S+: OK/);
  const pid = readPidfile(join(p.runDir, 'w1.pid'))!.pid;
  assert.ok(isAlive(pid));
  const status = run('status');
  assert.equal(status.status, 0, status.stdout);
  assert.match(status.stdout, /w1@\S+\s+up\s+/);
  const stop = run('stop');
  assert.equal(stop.status, 0, stop.stdout + stop.stderr);
  assert.ok(!isAlive(pid));
  assert.equal(run('status').status, 3, 'LSB: 3 = not running');
  assert.equal(run('bogus').status, 64);
});

test('npm scripts merged into package.json and used for real', { timeout: 90_000 }, async (t) => {
  const p = project(t);
  install(p.dir);
  writeFileSync(join(p.dir, 'package.json'), JSON.stringify({ name: 'host', private: true, scripts: { test: 'echo hi', 'workers:kill': 'mine' } }, null, 2));
  const r = await runAsynx(['init', 'npm-scripts', '--nodes=w1,w2', `--app=${MULTI_APP}`, '--concurrency=1', '--timeout=20'], p.dir, p.env);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /Kept your existing workers:kill \(pass --force to replace\)/);
  const pkg = JSON.parse(readFileSync(join(p.dir, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  assert.equal(pkg.scripts.test, 'echo hi');
  assert.equal(pkg.scripts['workers:kill'], 'mine');
  assert.equal(pkg.scripts['workers:start'], `asynx multi start w1 w2 -A ${MULTI_APP} -c 1 -l info`);
  const npm = (script: string) => spawnSync('npm', ['run', '--silent', script], { cwd: p.dir, env: p.env, encoding: 'utf8', timeout: 60_000 });
  const start = npm('workers:start');
  assert.equal(start.status, 0, start.stdout + start.stderr);
  assert.match(start.stdout, /\t> w1@\S+: OK\n\t> w2@\S+: OK/);
  const status = npm('workers:status');
  assert.equal(status.status, 0, status.stdout + status.stderr);
  const restart = npm('workers:restart');
  assert.equal(restart.status, 0, restart.stdout + restart.stderr);
  const stop = npm('workers:stop');
  assert.equal(stop.status, 0, stop.stdout + stop.stderr);
  assert.deepEqual(p.livePids(), []);
});

test('asynx.config.mjs starter is read by the worker for real', { timeout: 90_000 }, async (t) => {
  const p = project(t);
  install(p.dir);
  const r = await runAsynx(['init', 'config', '--broker=sqlite://./from-config.db'], p.dir, p.env);
  assert.equal(r.code, 0, r.stderr);
  writeFileSync(join(p.dir, 'tasks.mjs'), `import { Asynx } from 'asynx';\nexport const app = new Asynx();\napp.task('cfg.mul', (a, b) => a * b);\nexport default app;\n`);
  // no broker in the environment: the config file must be what points the worker at from-config.db
  const env = { ...p.env, ASYNX_BROKER_URL: '', ASYNX_CONFIG: '' };
  const start = await p.multi(['start', 'c1', '-A', './tasks.mjs', '-c', '1'], { env });
  assert.equal(start.code, 0, start.stdout + start.stderr);
  assert.ok(existsSync(join(p.dir, 'from-config.db')));
  const { Asynx } = await import('../../src/index.js');
  const client = new Asynx({ brokerUrl: `sqlite://${join(p.dir, 'from-config.db')}`, configFile: false });
  t.after(() => client.close());
  const result = await client.sendTask('cfg.mul', [6, 7]);
  assert.equal(await result.get({ timeout: 15 }), 42);
  assert.equal((await p.multi(['stopwait', 'c1', '--timeout=20'], { env })).code, 0);
  await waitFor('node gone', () => p.livePids().length === 0, 5_000);
});
