// multi status (issue 9c): says where it looked, the real logfile in --json, lists nodes without names, API table.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { hostname } from 'node:os';
import { Writable } from 'node:stream';
import { MULTI_APP, project } from './harness.js';
import { multi } from '../../src/multi/index.js';
import { readPidfile } from '../../src/process/pidfile.js';
import { isAlive } from '../../src/process/proc.js';

const H = hostname();

test('status hints where it looked, reports the logfile the node really uses, and lists nodes without names', { timeout: 90_000 }, async (t) => {
  const p = project(t);
  const where = ['--pidfile=./pids/%n.pid', '--logfile=./log/%n.log'];
  const start = await p.multi(['start', 'w1', 'w2', '-A', MULTI_APP, '-c', '1', ...where]);
  assert.equal(start.code, 0, start.stdout + start.stderr);
  const pids = ['w1', 'w2'].map((n) => readPidfile(join(p.dir, 'pids', `${n}.pid`))!.pid);
  for (const pid of pids) p.track(pid);
  // without the nodes' --pidfile: down, and the row says which file it looked for
  const blind = await p.multi(['status', 'w1', 'w2']);
  assert.equal(blind.code, 1);
  assert.match(blind.stdout, new RegExp(`w1@${H}\\s+down[^\\n]*\\n\\s+no pidfile at ${join(p.dir, '.asynx', 'run', 'w1.pid')} \\(started with another --pidfile\\? pass the same one\\)\\n`));
  // --json: the logfile the running node writes, although status was not told --logfile
  const json = await p.multi(['status', 'w1', 'w2', '--pidfile=./pids/%n.pid', '--json']);
  assert.equal(json.code, 0, json.stdout);
  const rows = JSON.parse(json.stdout) as Array<{ node: string; state: string; logfile: string; pid: number }>;
  assert.deepEqual(rows.map((r) => [r.node, r.state, r.logfile, r.pid]), [[`w1@${H}`, 'up', join(p.dir, 'log', 'w1.log'), pids[0]], [`w2@${H}`, 'up', join(p.dir, 'log', 'w2.log'), pids[1]]]);
  // no names: the nodes found in the pidfile directory, in name order
  const all = await p.multi(['status', '--pidfile=./pids/%n.pid']);
  assert.equal(all.code, 0, all.stdout);
  assert.match(all.stdout, new RegExp(`^NODE\\s+STATE.*\\nw1@${H}\\s+up\\s+${pids[0]}\\s.*\\nw2@${H}\\s+up\\s+${pids[1]}\\s.*\\n$`));
  const none = await p.multi(['status']);
  assert.equal(none.stdout, `No nodes: no pidfiles in ${join(p.dir, '.asynx', 'run')} (name the nodes, or pass the --pidfile they were started with)\n`);
  // the API: `[]` lists them too, and `output` gets the table
  let printed = '';
  const out = new Writable({ write(chunk, _e, cb) { printed += String(chunk); cb(); } });
  const api = await multi.status([], { cwd: p.dir, env: p.env, pidfile: './pids/%n.pid', output: out });
  assert.deepEqual([api.ok, api.nodes.map((r) => r.node)], [true, [`w1@${H}`, `w2@${H}`]]);
  assert.match(printed, new RegExp(`^NODE\\s+STATE\\s+PID.*\\nw1@${H}\\s+up\\s+${pids[0]}\\s.*\\nw2@${H}\\s+up\\s+${pids[1]}\\s`));
  assert.equal((await p.multi(['stopwait', 'w1', 'w2', '--pidfile=./pids/%n.pid', '--timeout=20'])).code, 0);
  for (const pid of pids) assert.ok(!isAlive(pid));
});
