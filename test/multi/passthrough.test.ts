// `--` passthrough (issue 8 defect 2): `multi start` runs the worker with `--` and what follows, untouched.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hostname } from 'node:os';
import { MULTI_APP, project } from './harness.js';
import { readPidfile } from '../../src/process/pidfile.js';
import { readCmdline } from '../../src/process/proc.js';

const H = hostname();

test('start spawns the worker command with `--` and the passthrough after the options', { timeout: 30_000 }, async (t) => {
  const p = project(t);
  // A stand-in for the node binary that records the argv it was given and fails: no worker is started.
  const fake = join(p.dir, 'fake-node.sh');
  writeFileSync(fake, `#!/bin/sh\nprintf '%s\\n' "$@" > "${join(p.dir, 'argv.txt')}"\necho 'fake launcher' >&2\nexit 3\n`);
  chmodSync(fake, 0o755);
  const r = await p.multi(['start', 'w1', '-c', '2', `--executable=${fake}`, '--', 'prefetchMultiplier=2', 'broker.pool_limit=10']);
  assert.equal(r.code, 1, r.stdout);
  assert.match(r.stdout, /\t> w1@\S+: FAILED\n\t\tfake launcher\n\t\t\* Child terminated with exit code 3\n/);
  const argv = readFileSync(join(p.dir, 'argv.txt'), 'utf8').trim().split('\n');
  assert.match(argv[0]!, /bin\/asynx$/);
  assert.deepEqual(argv.slice(1, 5), ['worker', '--detach', '-c', '2']);
  assert.ok(argv.includes(`w1@${H}`));
  assert.deepEqual(argv.slice(-3), ['--', 'prefetchMultiplier=2', 'broker.pool_limit=10']);
});

// Needs helper H1's `asynx worker -- key=value` (issue 8 defect 2, worker side): before that branch is merged the
// worker in this tree rejects the extra arguments and this test fails at `start`.
test('end to end (after merge with H1): multi start 1 -- prefetchMultiplier=2 runs a worker with the override', { timeout: 60_000 }, async (t) => {
  const p = project(t);
  const r = await p.multi(['start', '1', '-A', MULTI_APP, '-c', '1', '--', 'prefetchMultiplier=2']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const pid = readPidfile(join(p.runDir, 'asynx1.pid'))!.pid;
  assert.deepEqual(readCmdline(pid)!.slice(-2), ['--', 'prefetchMultiplier=2']);
  const app = p.client();
  assert.equal(await (await app.sendTask('multi.add', [2, 3])).get({ timeout: 15 }), 5);
  assert.equal((await p.multi(['stopwait', '1', '--timeout=20'])).code, 0);
});
