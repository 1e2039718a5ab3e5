// `asynx init systemd`: both units pass systemd-analyze verify, and their commands, run as systemd would, survive reloads.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MULTI_APP, project, runAsynx, type Project } from './harness.js';
import { parseInitArgs } from '../../src/cli/init.js';
import { isAsynxError } from '../../src/errors.js';
import { childPidsOf, isAlive, killTree, runToEnd, spawnProcess, waitGone } from '../helpers/process.js';
import { waitFor } from '../helpers/tmp.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Makes `asynx` resolvable from the project as if installed: node_modules/.bin/asynx. */
function install(dir: string): void {
  mkdirSync(join(dir, 'node_modules', '.bin'), { recursive: true });
  symlinkSync(ROOT, join(dir, 'node_modules', 'asynx'));
  symlinkSync(join(ROOT, 'bin', 'asynx'), join(dir, 'node_modules', '.bin', 'asynx'));
}

/** systemd-analyze, or a skip (a loud failure under CI=true: the Debian package is `systemd`). */
function systemdAnalyze(t: TestContext): boolean {
  const found = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' }).status === 0;
  if (found) return true;
  if (process.env.CI === 'true') assert.fail('systemd-analyze is missing: apt-get install -y systemd');
  t.skip('systemd-analyze not installed (apt-get install -y systemd)');
  return false;
}

/** The [Service] settings of a unit: key → every value given, in order. */
function settings(unit: string): Map<string, string[]> {
  const map = new Map<string, string[]>();
  for (const line of unit.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (m === null) continue;
    map.set(m[1]!, [...(map.get(m[1]!) ?? []), m[2]!]);
  }
  return map;
}

/** Splits a systemd value into words as systemd does: whitespace-separated, "double quotes" anywhere group and go. */
function words(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/(?:"(?:[^"\\]|\\.)*"|[^\s"]+)+/g)) {
    out.push(m[0].replace(/"((?:[^"\\]|\\.)*)"/g, (_q, inner: string) => inner.replace(/\\(.)/g, '$1')));
  }
  return out;
}

/** systemd specifiers: %% → %, %i instance, %H host. */
function specifiers(text: string, instance: string): string {
  return text.replace(/%([%iH])/g, (_m, c: string) => (c === '%' ? '%' : c === 'i' ? instance : 'localhost'));
}

/** The unit's environment as systemd builds it from Environment= lines (EnvironmentFile= absent here). */
function unitEnv(s: Map<string, string[]>, instance: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of s.get('Environment') ?? []) {
    for (const w of words(specifiers(line, instance))) {
      const eq = w.indexOf('=');
      env[w.slice(0, eq)] = w.slice(eq + 1);
    }
  }
  return env;
}

/** An Exec*= line as systemd runs it: specifiers, words, `$VAR` alone split into words, `${VAR}` substituted. */
function command(line: string, env: NodeJS.ProcessEnv, instance: string): string[] {
  return words(specifiers(line, instance)).flatMap((w) => {
    const alone = /^\$([A-Za-z_]+)$/.exec(w);
    if (alone !== null) return (env[alone[1]!] ?? '').split(/\s+/).filter(Boolean);
    return [w.replace(/\$\{([A-Za-z_]+)\}/g, (_m, k: string) => env[k] ?? '')];
  });
}

function one(s: Map<string, string[]>, key: string): string {
  const v = s.get(key);
  assert.equal(v?.length, 1, `${key}= expected once, got ${JSON.stringify(v)}`);
  return v[0]!;
}

async function render(p: Project, extra: string[] = []): Promise<{ node: string; multi: string }> {
  const r = await runAsynx(['init', 'systemd', '--nodes=w1,w2', `--app=${MULTI_APP}`, '--concurrency=1', '--user=svc', '--timeout=300', ...extra], p.dir, p.env);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /Next: sudo cp \S+asynx@\.service \/etc\/systemd\/system\/ .*enable --now asynx@w1 asynx@w2/);
  return { node: readFileSync(join(p.dir, 'asynx@.service'), 'utf8'), multi: readFileSync(join(p.dir, 'asynx.service'), 'utf8') };
}

test('systemd units: both pass systemd-analyze verify with no warning, the project asynx, EnvironmentFile, no root', { timeout: 60_000 }, async (t) => {
  if (!systemdAnalyze(t)) return;
  const p = project(t);
  install(p.dir);
  const { node, multi } = await render(p, ['--broker=amqp://u:p%40ss@h:5672//']);
  const v = spawnSync('systemd-analyze', ['verify', join(p.dir, 'asynx@w1.service'), join(p.dir, 'asynx.service')], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(v.status, 0, v.stderr);
  assert.equal(v.stderr.trim(), '', `systemd-analyze verify warned:\n${v.stderr}`);
  const local = join(p.dir, 'node_modules', '.bin', 'asynx');
  for (const unit of [node, multi]) {
    const s = settings(unit);
    assert.deepEqual(s.get('EnvironmentFile'), ['-/etc/default/asynx', `-${p.dir}/.env`]);
    assert.equal(one(s, 'User'), 'svc');
    assert.ok(one(s, 'ExecStart').startsWith(`${process.execPath} ${local} `), one(s, 'ExecStart'));
    assert.match(unit, /^Environment="ASYNX_BROKER_URL=amqp:\/\/u:p%%40ss@h:5672\/\/"$/m);
    assert.doesNotMatch(unit, /\{\{|User=root/);
  }
  // the per-node unit: systemd tracks the foreground worker itself
  const s = settings(node);
  assert.ok(['exec', 'simple'].includes(one(s, 'Type')));
  assert.equal(s.get('GuessMainPID'), undefined);
  assert.equal(s.get('PIDFile'), undefined);
  assert.ok(['always', 'on-failure'].includes(one(s, 'Restart')));
  assert.equal(one(s, 'KillMode'), 'mixed');
  assert.equal(one(s, 'KillSignal'), 'SIGTERM');
  assert.ok(Number(one(s, 'TimeoutStopSec')) >= 300, 'TimeoutStopSec must cover the warm shutdown');
  assert.equal(one(s, 'ExecReload'), '/bin/kill -HUP $MAINPID');
  assert.match(one(s, 'ExecStart'), / worker -A \S+ -n %i@%H -c 1 -l info$/);
  assert.doesNotMatch(one(s, 'ExecStart'), /--detach| multi /);
  // the multi unit: its reload must not be a rolling restart bounded by TimeoutStartSec
  assert.doesNotMatch(one(settings(multi), 'ExecReload'), / multi restart /);
});

test('systemd units: no node_modules/.bin/asynx → the resolved asynx, said in a comment; root only when asked', { timeout: 60_000 }, async (t) => {
  const p = project(t);
  const { node } = await render(p);
  assert.match(one(settings(node), 'ExecStart'), new RegExp(`^${process.execPath} ${join(ROOT, 'bin', 'asynx')} worker `));
  assert.match(node, /^# No node_modules\/\.bin\/asynx in .* render again with --force\.$/m);
  assert.match(node, /^# No --broker given: ASYNX_BROKER_URL comes from the files above/m);
  // default user = the invoking one; root refused unless explicit
  assert.equal(parseInitArgs(['systemd'], p.dir, 'alice', {}).user, 'alice');
  for (const kind of ['systemd', 'initd', 'supervisord']) {
    assert.throws(() => parseInitArgs([kind], p.dir, 'root', { SUDO_USER: 'alice' }), (e) => isAsynxError(e) && e.code === 'asynx.init.rootUser' && /--user=alice/.test(e.message));
    assert.equal(parseInitArgs([kind, '--user=root'], p.dir, 'root', {}).user, 'root');
  }
  assert.equal(parseInitArgs(['config'], p.dir, 'root', {}).user, 'root');
  // --out names a directory for the two units; '-' prints both
  const sub = await runAsynx(['init', 'systemd', '--user=svc', '--out=units'], p.dir, p.env);
  assert.equal(sub.code, 0, sub.stderr);
  assert.ok(existsSync(join(p.dir, 'units', 'asynx@.service')) && existsSync(join(p.dir, 'units', 'asynx.service')));
  const onFile = await runAsynx(['init', 'systemd', '--user=svc', '--out=asynx@.service', '--force'], p.dir, p.env);
  assert.equal(onFile.code, 64);
  assert.match(onFile.stderr, /must be a directory for systemd/);
  const printed = await runAsynx(['init', 'systemd', '--user=svc', '--out=-'], p.dir, p.env);
  assert.deepEqual(printed.stdout.match(/^# ---- \S+ ----$/gm), ['# ---- asynx@.service ----', '# ---- asynx.service ----']);
  if (process.getuid?.() === 0) {
    const r = await runAsynx(['init', 'systemd', '--out=-'], p.dir, { ...p.env, SUDO_USER: '' });
    assert.equal(r.code, 64);
    assert.match(r.stderr, /Refusing to render a service that runs as root .* --user=root if root is really meant/);
  }
});

test('asynx@.service run as systemd would: reload (HUP) lets a long task finish in place, kill -9 ends the main pid', { timeout: 90_000 }, async (t) => {
  const p = project(t);
  install(p.dir);
  const s = settings((await render(p)).node);
  const env = { ...p.env, ...unitEnv(s, 'w1') };
  const [exe, ...args] = command(one(s, 'ExecStart'), env, 'w1');
  const main = spawnProcess(exe!, args, { cwd: one(s, 'WorkingDirectory'), env });
  const pool = new Set<number>();
  t.after(async () => {
    for (const pid of [main.pid, ...pool]) killTree(pid);
    await waitGone([main.pid, ...pool], 5_000);
  });
  await waitFor('worker ready', () => /ready\./.test(main.output()), 30_000);
  for (const pid of childPidsOf(main.pid)) pool.add(pid);
  const app = p.client();
  const long = await app.sendTask('multi.slow', [4000]);
  await waitFor('long task running', () => /multi\.slow\[\S+\] received/.test(main.output()), 15_000);
  const [kill, ...killArgs] = command(one(s, 'ExecReload'), { ...env, MAINPID: String(main.pid) }, 'w1');
  const reload = await runToEnd(kill!, killArgs, { timeoutMs: 10_000 });
  assert.equal(reload.code, 0, reload.stderr);
  assert.ok(reload.ms < 2_000, `reload took ${reload.ms} ms: it must only signal`);
  const done = (await long.get({ timeout: 20_000 })) as { ms: number; pid: number };
  assert.equal(done.ms, 4000, 'the long task finished, not cut short by the reload');
  await waitFor('pool restarted', () => /restarted\./.test(main.output()), 20_000);
  assert.ok(isAlive(main.pid), 'reload keeps the main pid (systemd keeps tracking it)');
  for (const pid of childPidsOf(main.pid)) pool.add(pid);
  const after = (await (await app.sendTask('multi.slow', [10])).get({ timeout: 20_000 })) as { pid: number };
  assert.notEqual(after.pid, done.pid, 'a fresh pool after the reload');
  // kill -9 of the main pid: the exit systemd sees is SIGKILL, which Restart=always (or on-failure) restarts
  const orphans = childPidsOf(main.pid);
  for (const pid of orphans) pool.add(pid);
  process.kill(main.pid, 'SIGKILL');
  assert.equal(await main.exited, 'SIGKILL');
  // the pool leaves with it, so systemd (which waits for the rest of the cgroup before restarting) restarts at once
  assert.ok(await waitGone(orphans, 5_000), `pool children outlived the killed main: ${orphans.filter(isAlive).join(', ')}`);
  assert.ok(['always', 'on-failure'].includes(one(s, 'Restart')));
});

test('asynx.service run as systemd would: ExecReload returns at once while a long task runs, which then finishes', { timeout: 120_000 }, async (t) => {
  const p = project(t);
  install(p.dir);
  const s = settings((await render(p)).multi);
  const env = { ...p.env, ...unitEnv(s, '') };
  const run = (key: string) => {
    const [exe, ...args] = command(one(s, key), env, '');
    return runToEnd(exe!, args, { cwd: one(s, 'WorkingDirectory'), env, timeoutMs: 60_000 });
  };
  const start = await run('ExecStart');
  assert.equal(start.code, 0, start.stdout + start.stderr);
  const before = p.livePids();
  assert.equal(before.length, 2);
  const app = p.client();
  const long = await app.sendTask('multi.slow', [6000]);
  await waitFor('long task running', () => before.some((pid) => childPidsOf(pid).length > 0) && readFileSync(join(p.logDir, 'w1.log'), 'utf8').concat(readFileSync(join(p.logDir, 'w2.log'), 'utf8')).includes('multi.slow['), 15_000);
  const reload = await run('ExecReload');
  assert.equal(reload.code, 0, reload.stdout + reload.stderr);
  const startTimeout = Number(one(s, 'TimeoutStartSec')) * 1000;
  assert.ok(reload.ms < 3_000 && reload.ms < startTimeout, `ExecReload took ${reload.ms} ms: systemd kills a reload after TimeoutStartSec`);
  const done = (await long.get({ timeout: 30_000 })) as { ms: number };
  assert.equal(done.ms, 6000);
  assert.deepEqual(p.livePids().sort(), [...before].sort(), 'reload keeps the nodes (pool restart in place)');
  const stop = await run('ExecStop');
  assert.equal(stop.code, 0, stop.stdout + stop.stderr);
  assert.deepEqual(p.livePids(), []);
});

test('asynx@.service stop as systemd does it (KillSignal to the main pid only): the running task finishes first', { timeout: 90_000 }, async (t) => {
  const p = project(t);
  install(p.dir);
  const s = settings((await render(p)).node);
  assert.equal(one(s, 'KillMode'), 'mixed', 'mixed: KillSignal goes to the main pid only, pool children are left to it');
  const env = { ...p.env, ...unitEnv(s, 'w2') };
  const [exe, ...args] = command(one(s, 'ExecStart'), env, 'w2');
  const main = spawnProcess(exe!, args, { cwd: one(s, 'WorkingDirectory'), env });
  const pool = new Set<number>();
  t.after(async () => {
    for (const pid of [main.pid, ...pool]) killTree(pid);
    await waitGone([main.pid, ...pool], 5_000);
  });
  await waitFor('worker ready', () => /ready\./.test(main.output()), 30_000);
  for (const pid of childPidsOf(main.pid)) pool.add(pid);
  const task = await p.client().sendTask('multi.slow', [3000]);
  await waitFor('task running', () => /multi\.slow\[\S+\] received/.test(main.output()), 15_000);
  const stopped = Date.now();
  process.kill(main.pid, one(s, 'KillSignal') as NodeJS.Signals);
  const exit = await main.exited;
  assert.ok(exit === 0 || exit === 'SIGTERM', `clean exit for systemd, got ${exit}`);
  const ms = Date.now() - stopped;
  assert.ok(ms < Number(one(s, 'TimeoutStopSec')) * 1000, 'inside TimeoutStopSec');
  assert.equal(((await task.get({ timeout: 10_000 })) as { ms: number }).ms, 3000, 'the running task finished before the node exited');
});
