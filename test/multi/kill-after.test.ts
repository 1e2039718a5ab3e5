// --kill-after longer than --timeout (issue 9a): the documented examples KILL at --kill-after and exit 0.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MULTI_APP, project } from './harness.js';
import { multi } from '../../src/multi/index.js';
import { isAlive } from '../../src/process/proc.js';
import { waitLimitMs } from '../../src/multi/stopping.js';
import { waitFor } from '../helpers/tmp.js';

function received(logDir: string, id: string): boolean {
  return readdirSync(logDir).some((f) => readFileSync(join(logDir, f), 'utf8').includes(`[${id}] received`));
}

test('wait limits: KILL at --kill-after always; --timeout alone ends the wait', () => {
  assert.equal(waitLimitMs(2_000, null), 2_000);
  assert.equal(waitLimitMs(null, 4_000), 14_000);
  assert.equal(waitLimitMs(2_000, 4_000), 14_000);
  assert.equal(waitLimitMs(10_000, 4_000), 10_000);
  assert.equal(waitLimitMs(1_000, 1_000), 3_000);
  assert.equal(waitLimitMs(null, null), null);
});

test('stopwait --timeout=1 --kill-after=2 on a busy node: reports it at 1 s, KILLs at 2 s, exit 0', { timeout: 60_000 }, async (t) => {
  const p = project(t);
  assert.equal((await p.multi(['start', 'w1', 'w2', '-A', MULTI_APP, '-c', '1'])).code, 0);
  const long = await p.client().sendTask('multi.slow', [30_000]);
  await waitFor('a node to receive the long task', () => received(p.logDir, long.id), 10_000, 50);
  const pids = p.livePids();
  const r = await p.multi(['stopwait', 'w1', 'w2', '--timeout=1', '--kill-after=2']);
  assert.equal(r.code, 0, r.stdout);
  assert.match(r.stdout, /> Still alive after 1s: w\d@\S+ \(\d+\); KILL at 2s\n\t> w\d@\S+: KILL -> \d+ \(still alive after 2s\)\n\t> w\d@\S+: OK\n$/);
  assert.doesNotMatch(r.stdout, /Timed out/);
  assert.ok(r.ms < 12_000, `took ${r.ms} ms`);
  for (const pid of pids) assert.ok(!isAlive(pid), `pid ${pid} survived`);
});

test('the API with the README values (timeout 120 < killAfter 150, here scaled to 1 s / 2 s) KILLs and resolves ok', { timeout: 60_000 }, async (t) => {
  const p = project(t);
  const opts = { app: MULTI_APP, concurrency: 1, cwd: p.dir, env: p.env, timeout: 1, killAfter: '2s' };
  assert.equal((await multi.start(['w1'], opts)).ok, true);
  const long = await p.client().sendTask('multi.slow', [30_000]);
  await waitFor('the node to receive the long task', () => received(p.logDir, long.id), 10_000, 50);
  p.livePids();
  const events: string[] = [];
  const r = await multi.stopwait(['w1'], { ...opts, on: { 'wait:overdue': () => events.push('overdue'), 'node:escalate': () => events.push('kill') } });
  assert.deepEqual([r.ok, r.nodes.map((n) => n.outcome), events], [true, ['killed'], ['overdue', 'kill']]);
});
