// Issue 9: `multi kill` and `stopwait --kill-after` store FAILURE (WorkerLostError) for the acks-early tasks the
// KILLed node was running, once it is gone, without starting it again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { MULTI_APP, project, type Project } from './harness.js';
import { readStatus } from '../../src/process/status-file.js';
import { waitFor } from '../helpers/tmp.js';

async function runningOnRecord(p: Project, node: string, id: string): Promise<void> {
  await waitFor(`${id} on record in ${node}'s status file`, () => readStatus(join(p.runDir, `${node}.pid.status.json`))?.running?.some((t) => t.id === id), 15_000, 50);
}

async function lostFailure(p: Project, id: string, pid: number): Promise<void> {
  const body = await (await p.client().backend()).get(id);
  assert.equal(body?.status, 'FAILURE', `state of ${id}: ${JSON.stringify(body)}`);
  const exc = body!.result as { exc_type: string; exc_message: unknown[] };
  assert.equal(exc.exc_type, 'WorkerLostError');
  assert.match(String(exc.exc_message[0]), new RegExp(`worker node pid ${pid} was killed while running the task`));
}

test('multi kill: the task the node was running ends FAILURE (WorkerLostError) as soon as kill returns', { timeout: 60_000 }, async (t) => {
  const p = project(t);
  assert.equal((await p.multi(['start', 'w1', '-A', MULTI_APP, '-c', '1'])).code, 0);
  const long = await p.client().sendTask('multi.slow', [60_000]);
  await runningOnRecord(p, 'w1', long.id);
  const [pid] = p.livePids();
  const r = await p.multi(['kill', 'w1', '--verbose']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /w1@\S+: 1 task\(s\) it was running stored as FAILURE \(WorkerLostError\)/);
  await lostFailure(p, long.id, pid!);
  assert.deepEqual(p.livePids(), [], 'not started again');
  assert.ok(!existsSync(join(p.runDir, 'w1.pid.status.json')), 'settled: the status file is cleaned up');
});

test('stopwait --kill-after: the KILLed node\'s running task ends FAILURE (WorkerLostError)', { timeout: 60_000 }, async (t) => {
  const p = project(t);
  assert.equal((await p.multi(['start', 'w1', '-A', MULTI_APP, '-c', '1'])).code, 0);
  const long = await p.client().sendTask('multi.slow', [60_000]);
  await runningOnRecord(p, 'w1', long.id);
  const [pid] = p.livePids();
  const r = await p.multi(['stopwait', 'w1', '--kill-after=1']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /KILL -> \d+/);
  await lostFailure(p, long.id, pid!);
});
