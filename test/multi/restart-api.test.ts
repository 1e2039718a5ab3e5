// Rolling restart with tasks flowing (none lost, never zero consumers), and the programmatic API.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { hostname } from 'node:os';
import { Writable } from 'node:stream';
import { MULTI_APP, project } from './harness.js';
import { multi, type MultiEventMap } from '../../src/multi/index.js';
import { readPidfile } from '../../src/process/pidfile.js';
import { isAlive } from '../../src/process/proc.js';

const H = hostname();

test('rolling restart with tasks flowing: every task runs once, one node restarts at a time', { timeout: 120_000 }, async (t) => {
  const p = project(t);
  const nodes = ['w1', 'w2', 'w3'];
  assert.equal((await p.multi(['start', ...nodes, '-A', MULTI_APP, '-c', '2'])).code, 0);
  const before = nodes.map((n) => readPidfile(join(p.runDir, `${n}.pid`))!.pid);
  const app = p.client();
  const ledger = join(p.dir, 'ledger.txt');
  const sent: Array<Promise<unknown>> = [];
  let sending = true;
  // a steady trickle of 200 ms tasks during the whole restart
  const producer = (async () => {
    while (sending) {
      const r = await app.sendTask('multi.ledger', [ledger, 200]);
      sent.push(r.get({ timeout: 60 }));
      await new Promise((res) => setTimeout(res, 40));
    }
  })();
  // watch that at least one node is up at every moment
  let minUp = nodes.length;
  const watcher = setInterval(() => {
    const up = nodes.filter((n) => {
      const rec = readPidfile(join(p.runDir, `${n}.pid`));
      return rec !== null && isAlive(rec.pid);
    }).length;
    minUp = Math.min(minUp, up);
  }, 20);
  const restart = await p.multi(['restart', ...nodes, '-A', MULTI_APP, '-c', '2', '--timeout=30']);
  sending = false;
  await producer;
  clearInterval(watcher);
  assert.equal(restart.code, 0, restart.stdout + restart.stderr);
  const order = restart.stdout.split('\n').filter((l) => l.startsWith('> Restarting node') || l.startsWith('\t> w'));
  assert.deepEqual(order.filter((l) => l.startsWith('> Restarting')), nodes.map((n) => `> Restarting node ${n}@${H}: OK`));
  assert.ok(minUp >= 2, `only ${minUp} node(s) up at some point during a rolling restart of 3`);
  const after = nodes.map((n) => readPidfile(join(p.runDir, `${n}.pid`))!.pid);
  for (const [k, pid] of after.entries()) assert.notEqual(pid, before[k]);
  const results = await Promise.all(sent);
  assert.ok(results.length >= 10, `only ${results.length} tasks sent`);
  assert.ok(results.every((r) => r === true));
  const ran = readFileSync(ledger, 'utf8').trim().split('\n');
  assert.equal(ran.length, results.length, 'a task was lost or ran twice');
  assert.equal(new Set(ran).size, ran.length);
  assert.equal((await p.multi(['stopwait', ...nodes, '--timeout=30'])).code, 0);
});

test('programmatic API: start / status / restart / stopwait / kill resolve to per-node results, print only when asked', { timeout: 120_000 }, async (t) => {
  const p = project(t);
  const opts = { cwd: p.dir, env: p.env, app: MULTI_APP, concurrency: { a: 2 }, startTimeout: 20, timeout: 20 } as const;
  const events: Array<keyof MultiEventMap> = [];
  const started = await multi.start(['a', 'b'], { ...opts, on: { 'node:start': () => events.push('node:start'), 'start:begin': () => events.push('start:begin') } });
  assert.equal(started.ok, true);
  assert.deepEqual(started.nodes.map((n) => [n.node, n.outcome]), [[`a@${H}`, 'started'], [`b@${H}`, 'started']]);
  assert.deepEqual(events, ['start:begin', 'node:start', 'node:start']);
  for (const n of started.nodes) {
    assert.ok(n.pid !== null && isAlive(n.pid));
    assert.equal(n.pidfile, join(p.dir, '.asynx', 'run', `${n.node.split('@')[0]}.pid`));
    assert.ok(existsSync(n.logfile));
  }
  const status = await multi.status(['a', 'b'], opts);
  assert.equal(status.ok, true);
  assert.deepEqual(status.nodes.map((r) => [r.state, r.concurrency]), [['up', 2], ['up', 2]]);
  // the CLI sees the API's nodes: same grammar, same files
  const cli = await p.multi(['status', 'a', 'b', '--json']);
  assert.equal(cli.code, 0);
  // print when asked
  let printed = '';
  const out = new Writable({ write(chunk, _enc, cb) { printed += String(chunk); cb(); } });
  const restarted = await multi.restart(['a', 'b'], { ...opts, output: out });
  assert.equal(restarted.ok, true, JSON.stringify(restarted));
  assert.deepEqual(restarted.nodes.map((n) => n.outcome), ['restarted', 'restarted']);
  assert.ok(restarted.nodes.every((n) => n.previousPid !== null && n.previousPid !== n.pid));
  assert.match(printed, new RegExp(`> Restarting node a@${H}: OK\\n[\\s\\S]*> Restarting node b@${H}: OK\\n`));
  const again = await multi.start(['a', 'b'], opts);
  assert.deepEqual(again.nodes.map((n) => n.outcome), ['alreadyRunning', 'alreadyRunning']);
  const stopped = await multi.stopwait(['a'], opts);
  assert.deepEqual(stopped.nodes.map((n) => [n.node, n.outcome]), [[`a@${H}`, 'stopped']]);
  const killed = await multi.kill(['a', 'b'], opts);
  assert.equal(killed.ok, true);
  assert.deepEqual(killed.nodes.map((n) => n.outcome), ['down', 'killed']);
  const down = await multi.status(['a', 'b'], opts);
  assert.equal(down.ok, false);
  assert.deepEqual(down.nodes.map((r) => r.state), ['down', 'down']);
  const failed = await multi.start(['c'], { ...opts, app: join(p.dir, 'missing.mjs') });
  assert.equal(failed.ok, false);
  assert.equal(failed.nodes[0]?.outcome, 'failed');
  assert.match(failed.nodes[0]?.reason ?? '', /missing\.mjs/);
});

test('rolling restart stops at the first node that does not come back; the rest keep running', { timeout: 90_000 }, async (t) => {
  const p = project(t);
  assert.equal((await p.multi(['start', '3', '-A', MULTI_APP, '-c', '1'])).code, 0);
  const before = [1, 2, 3].map((k) => readPidfile(join(p.runDir, `asynx${k}.pid`))!.pid);
  const r = await p.multi(['restart', '3', '-A', MULTI_APP, '-c', '1', '-c:2', 'lots', '--timeout=20']);
  assert.equal(r.code, 1, r.stdout);
  assert.match(r.stdout, new RegExp(`> Restarting node asynx1@${H}: OK\\n`));
  assert.match(r.stdout, new RegExp(`> Restarting node asynx2@${H}: FAILED\\n\\t\\t.*concurrency`));
  assert.match(r.stdout, new RegExp(`> asynx3@${H}: skipped \\(not restarted: asynx2@${H} did not come back`));
  assert.ok(isAlive(before[2]!), 'node 3 was taken down although node 2 failed');
  assert.equal(readPidfile(join(p.runDir, 'asynx3.pid'))?.pid, before[2]);
  const status = await p.multi(['status', '3', '--json']);
  assert.equal(status.code, 1);
  assert.deepEqual((JSON.parse(status.stdout) as Array<{ state: string }>).map((s) => s.state), ['up', 'down', 'up']);
  assert.equal((await p.multi(['stopwait', '3', '--timeout=20'])).code, 0);
});
