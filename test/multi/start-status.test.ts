// multi start / status / double start / start failures, against real detached workers on the SQLite broker.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hostname } from 'node:os';
import { MULTI_APP, project } from './harness.js';
import { readPidfile } from '../../src/process/pidfile.js';
import { readStatus } from '../../src/process/status-file.js';

const H = hostname();

test('start 3 nodes with per-node concurrency; status shows 3 up with their pool sizes; tasks run', { timeout: 90_000 }, async (t) => {
  const p = project(t);
  const start = await p.multi(['start', '3', '-A', MULTI_APP, '-c', '1', '-c:2', '2', '-c:3', '3']);
  assert.equal(start.code, 0, start.stdout + start.stderr);
  assert.equal(start.stdout, `asynx multi v0.1.0\n> Starting nodes...\n\t> asynx1@${H}: OK\n\t> asynx2@${H}: OK\n\t> asynx3@${H}: OK\n`);
  for (const k of [1, 2, 3]) {
    const rec = readPidfile(join(p.runDir, `asynx${k}.pid`));
    assert.ok(rec !== null && rec.node === `asynx${k}@${H}` && rec.startTime !== null);
    assert.equal(readStatus(join(p.runDir, `asynx${k}.pid.status.json`))?.state, 'running');
    assert.ok(existsSync(join(p.logDir, `asynx${k}.log`)));
    // %I: each pool child has its own log file
    assert.ok(existsSync(join(p.logDir, `asynx${k}-1.log`)));
  }
  const status = await p.multi(['status', '3', '--json']);
  assert.equal(status.code, 0, status.stdout + status.stderr);
  const rows = JSON.parse(status.stdout) as Array<{ node: string; state: string; pid: number; concurrency: number; poolPids: number[]; rss: number; cpu: number; uptimeMs: number; processed: number }>;
  assert.deepEqual(rows.map((r) => [r.node, r.state, r.concurrency, r.poolPids.length]), [[`asynx1@${H}`, 'up', 1, 1], [`asynx2@${H}`, 'up', 2, 2], [`asynx3@${H}`, 'up', 3, 3]]);
  for (const r of rows) assert.ok(r.pid > 0 && r.rss > 0 && r.cpu >= 0 && r.uptimeMs >= 0);
  // tasks flow and are counted
  const app = p.client();
  const results = await Promise.all([1, 2, 3, 4, 5, 6].map((n) => app.sendTask('multi.add', [n, n])));
  assert.deepEqual(await Promise.all(results.map((r) => r.get({ timeout: 15 }))), [2, 4, 6, 8, 10, 12]);
  const table = await p.multi(['status', '3']);
  assert.equal(table.code, 0);
  assert.match(table.stdout, /^NODE\s+STATE\s+PID\s+UPTIME\s+CPU%\s+RSS\s+POOL\s+ACTIVE\s+TASKS\n/);
  assert.equal(table.stdout.trim().split('\n').length, 4);
  const stop = await p.multi(['stopwait', '3', '--timeout=20']);
  assert.equal(stop.code, 0, stop.stdout);
  assert.deepEqual(p.livePids(), []);
});

test('double start leaves running nodes alone; two concurrent starts never double-start', { timeout: 90_000 }, async (t) => {
  const p = project(t);
  const [a, b] = await Promise.all([
    p.multi(['start', 'w1', 'w2', '-A', MULTI_APP, '-c', '1']),
    p.multi(['start', 'w1', 'w2', '-A', MULTI_APP, '-c', '1']),
  ]);
  assert.equal(a.code, 0, a.stdout + a.stderr);
  assert.equal(b.code, 0, b.stdout + b.stderr);
  const lines = (a.stdout + b.stdout).split('\n');
  assert.equal(lines.filter((l) => l.endsWith(': OK')).length, 2, a.stdout + b.stdout);
  assert.equal(lines.filter((l) => /: already running \(pid \d+\)$/.test(l)).length, 2, a.stdout + b.stdout);
  const pids = p.livePids();
  assert.equal(pids.length, 2);
  // exactly one worker process per node (plus one pool child each)
  const again = await p.multi(['start', 'w1', 'w2', '-A', MULTI_APP, '-c', '1']);
  assert.equal(again.code, 0);
  assert.match(again.stdout, new RegExp(`\\t> w1@${H}: already running \\(pid ${pids[0] ?? 0}|${pids[1] ?? 0}\\)`));
  for (const node of ['w1', 'w2']) {
    const log = readFileSync(join(p.logDir, `${node}.log`), 'utf8');
    assert.equal(log.match(/ ready\./g)?.length, 1, log);
  }
  const stop = await p.multi(['stopwait', 'w1', 'w2', '--timeout=20']);
  assert.equal(stop.code, 0, stop.stdout);
});

test('start failures say why: bad option (launcher), uncreatable log dir, node that fails at startup', { timeout: 90_000 }, async (t) => {
  const p = project(t);
  const bad = await p.multi(['start', 'w1', '-A', MULTI_APP, '-c', 'lots']);
  assert.equal(bad.code, 1);
  assert.match(bad.stdout, new RegExp(`\\t> w1@${H}: FAILED\\n\\t\\t.*concurrency`));
  // a regular file where the log directory should be: fails for root too
  writeFileSync(join(p.dir, 'blocker'), '');
  const noDir = await p.multi(['start', 'w1', 'w2', '-A', MULTI_APP, '--logfile:w2=blocker/logs/%n%I.log']);
  assert.equal(noDir.code, 1, noDir.stdout);
  assert.match(noDir.stdout, new RegExp(`\\t> w1@${H}: OK\\n`));
  assert.match(noDir.stdout, new RegExp(`\\t> w2@${H}: FAILED\\n\\t\\tcannot create directory ${join(p.dir, 'blocker', 'logs')} \\(\\w+\\).*--logfile=`));
  // the app module is missing: the node's own error is shown
  const missing = await p.multi(['start', 'w3', '-A', join(p.dir, 'nope.mjs'), '--start-timeout=20']);
  assert.equal(missing.code, 1, missing.stdout);
  assert.match(missing.stdout, new RegExp(`\\t> w3@${H}: FAILED\\n\\t\\t.*nope\\.mjs`));
  // the app module throws on import, after the launcher detached: the error comes from the node's log, fast
  writeFileSync(join(p.dir, 'throws.mjs'), "throw new Error('boom at import');\n");
  const throws = await p.multi(['start', 'w5', '-A', './throws.mjs']);
  assert.equal(throws.code, 1, throws.stdout);
  assert.match(throws.stdout, new RegExp(`\\t> w5@${H}: FAILED\\n(\\t\\t.*\\n)*\\t\\t.*boom at import`));
  assert.ok(throws.ms < 15_000, `import failure detected in ${throws.ms} ms`);
  // a broker URL the worker cannot use: the worker fails after detaching; its status/log tells why
  const broken = await p.multi(['start', 'w4', '-A', MULTI_APP, '--broker=bogus://nowhere', '--start-timeout=20']);
  assert.equal(broken.code, 1, broken.stdout);
  assert.match(broken.stdout, new RegExp(`\\t> w4@${H}: FAILED\\n\\t\\t.+`));
  assert.ok(broken.ms < 15_000, `failure detected in ${broken.ms} ms`);
  await p.multi(['stopwait', 'w1', '--timeout=20']);
});
