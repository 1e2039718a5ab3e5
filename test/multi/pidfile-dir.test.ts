// A pidfile directory multi cannot write or create (issue 9b): fail at once, one line, exit 73; /proc paths end.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync } from 'node:fs';
import { BIN, MULTI_APP, project, type CliRun } from './harness.js';

const asRoot = process.getuid?.() === 0;

/** Runs `asynx multi <args>` as user nobody (setpriv), bounded. */
function multiAsNobody(args: string[], cwd: string, env: NodeJS.ProcessEnv, timeoutMs = 20_000): Promise<CliRun> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const p = spawn('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', process.execPath, BIN, 'multi', ...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      if (p.pid !== undefined) process.kill(p.pid, 'SIGKILL');
      reject(new Error(`multi ${args.join(' ')} as nobody did not finish within ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    p.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr, ms: Date.now() - started });
    });
  });
}

test('start as a user who cannot write the pidfile directory: one line naming it, exit 73, at once', { timeout: 60_000, skip: asRoot ? false : 'needs root to run multi as nobody' }, async (t) => {
  const p = project(t);
  chmodSync(p.dir, 0o755);
  mkdirSync(p.runDir, { recursive: true, mode: 0o755 });
  for (const verb of [['start', '1', '-A', MULTI_APP, '--start-timeout=5'], ['restart', '1', '-A', MULTI_APP, '--start-timeout=5']]) {
    const r = await multiAsNobody(verb, p.dir, p.env);
    assert.equal(r.code, 73, `${verb[0]}: ${r.stdout}${r.stderr}`);
    assert.ok(r.ms < 5_000, `${verb[0]} took ${r.ms} ms`);
    assert.equal(r.stderr, `asynx: Cannot write to the pidfile directory ${p.runDir} (EACCES) as nobody: multi keeps its lock and the workers their pidfiles there; make it writable for this user, or pass --pidfile=<writable dir>/%n.pid\n`);
    assert.doesNotMatch(r.stdout, /Starting nodes/);
  }
  // reading verbs still work without the lock: nothing to clean, nothing running
  const status = await multiAsNobody(['status', '1'], p.dir, p.env);
  assert.equal(status.code, 1);
  assert.ok(status.ms < 5_000);
  assert.match(status.stdout, /asynx1@\S+\s+down/);
  const stop = await multiAsNobody(['stopwait', '1'], p.dir, p.env);
  assert.equal(stop.code, 0, stop.stderr);
  assert.ok(stop.ms < 5_000);
});

test('--pidfile under /proc fails at once (no endless recursive mkdir), exit 73', { timeout: 30_000 }, async (t) => {
  const p = project(t);
  const r = await p.multi(['start', '1', '-A', MULTI_APP, '--pidfile=/proc/asynx/%n.pid'], { timeoutMs: 15_000 });
  assert.equal(r.code, 73, r.stdout + r.stderr);
  assert.match(r.stderr, /^asynx: Cannot create the pidfile directory \/proc\/asynx \(\w+\) as \S+: .*--pidfile=<writable dir>\/%n\.pid\n$/);
  assert.ok(r.ms < 5_000, `took ${r.ms} ms`);
});
