// asynx inspect / control / status / revoke against asynx workers on one SQLite broker file.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { tempDir, waitFor } from '../helpers/tmp.js';
import { runCli, startWorker, type RunningWorker } from '../helpers/worker.js';

describe('asynx inspect / control / status / revoke on SQLite', () => {
  const tmp = tempDir('asynx-inspect-');
  const db = join(tmp.dir, 'broker.db');
  const env = { ASYNX_BROKER_URL: `sqlite://${db}`, ASYNX_RESULT_BACKEND: `sqlite://${join(tmp.dir, 'results.db')}` };
  const workers: RunningWorker[] = [];
  const cli = (args: string[]) => runCli(args, env, 30_000, tmp.dir);
  before(async () => {
    for (const name of ['a@h', 'b@h']) workers.push(await startWorker({ brokerUrl: env.ASYNX_BROKER_URL, env, cwd: tmp.dir, args: ['-n', name, '-c', '1'] }));
  });
  after(async () => {
    for (const w of workers) await w.stop('SIGKILL', 10_000).catch(() => undefined);
    tmp.cleanup();
  });

  test('inspect ping: every node, in celery inspect\'s layout', { timeout: 60_000 }, async () => {
    const r = await cli(['inspect', 'ping']);
    assert.equal(r.code, 0, r.stderr);
    const blocks = r.stdout.split(/(?=^->)/m).map((b) => b.replace(/\n\n\d+ nodes? online\.\n$/, '\n')).sort();
    assert.deepEqual(blocks, ['->  a@h: OK\n        pong\n', '->  b@h: OK\n        pong\n']);
    assert.match(r.stdout, /\n\n2 nodes online\.\n$/);
  });

  test('-d names the nodes that answer; --json prints {node: answer}', { timeout: 60_000 }, async () => {
    const r = await cli(['inspect', 'registered', '-d', 'b@h', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const replies = JSON.parse(r.stdout) as Record<string, string[]>;
    assert.deepEqual(Object.keys(replies), ['b@h']);
    assert.ok(replies['b@h']!.includes('t.add'), r.stdout);
    const stats = await cli(['inspect', 'stats', '-d', 'a@h']);
    assert.equal(stats.code, 0, stats.stderr);
    assert.match(stats.stdout, new RegExp(`^->  a@h: OK\\n    \\{\\n {8}"broker"[^]*"pid": ${workers[0]!.pid},`));
  });

  test('status lists the nodes online; --json the ping replies', { timeout: 60_000 }, async () => {
    const r = await cli(['status']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.split('\n').filter((l) => l.startsWith('->')).sort(), ['->  a@h: OK', '->  b@h: OK']);
    assert.match(r.stdout, /\n\n2 nodes online\.\n$/);
    const j = await cli(['status', '--json']);
    assert.deepEqual(JSON.parse(j.stdout), { 'a@h': { ok: 'pong' }, 'b@h': { ok: 'pong' } });
  });

  test('control revoke and asynx revoke: each node flags the ids', { timeout: 60_000 }, async () => {
    const c = await cli(['control', 'revoke', 'id-1', 'id-2', '-d', 'a@h', '--json']);
    assert.equal(c.code, 0, c.stderr);
    assert.deepEqual(JSON.parse(c.stdout), [{ 'a@h': { ok: 'tasks id-1, id-2 flagged as revoked' } }]);
    const r = await cli(['revoke', 'id-3', '--terminate', '--signal', 'KILL']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.split('\n').filter((l) => /^->  [ab]@h: OK$/.test(l)).length, 2, r.stdout);
    assert.match(r.stdout, /^ {8}terminate: tasks unknown$/m); // Celery: no such task runs here
  });

  test('an unknown method, bad arguments, a bad -d or --signal are usage errors (64) that send nothing', { timeout: 60_000 }, async () => {
    const cases: Array<[string[], RegExp]> = [
      [['inspect', 'stat'], /unknown inspect method 'stat' \(did you mean 'stats'\?\)/],
      [['control', 'ping'], /unknown control method 'ping'/],
      [['control', 'rate_limit', 't.add'], /Command 'rate_limit' takes arguments: <task_name> <rate_limit/],
      [['control', 'pool_grow', 'two'], /n must be a whole number, got 'two'/],
      [['control', 'cancel_consumer', 'q1', 'q2'], /unexpected 'q2'/],
      [['inspect', 'ping', '-d', 'a@h,'], /destination must be a list of node names/],
      [['revoke', 'x', '--signal', 'KILL'], /--signal is only used with --terminate/],
      [['revoke', 'x', '--terminate', '--signal', 'NOPE'], /--signal must be a signal name/],
      [['inspect', 'ping', '--timeout', 'soon'], /--timeout/],
    ];
    for (const [args, re] of cases) {
      const r = await cli(args);
      assert.equal(r.code, 64, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re, args.join(' '));
    }
  });

  test('no node replied: exit 1 with Celery\'s message; a missing broker file is not created', { timeout: 60_000 }, async () => {
    const r = await cli(['inspect', 'ping', '-d', 'nobody@h', '--timeout', '0.3']);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^asynx: No nodes replied within time constraint/);
    assert.equal(r.stdout, '');
    const missing = join(tmp.dir, 'none', 'x.db');
    const m = await runCli(['status'], { ...env, ASYNX_BROKER_URL: `sqlite://${missing}` }, 30_000, tmp.dir);
    assert.equal(m.code, 1, m.stderr);
    assert.match(m.stderr, /No nodes replied within time constraint: there is no broker file/);
    assert.equal(existsSync(missing), false);
  });

  test('the mailbox tables are empty after the calls; control shutdown stops the node it names', { timeout: 60_000 }, async () => {
    const conn = new Database(db, { readonly: true });
    try {
      const count = (t: string) => (conn.prepare(`SELECT COUNT(*) AS n FROM ${t}`).get() as { n: number }).n;
      await waitFor('empty mailbox tables', () => count('control_requests') + count('control_replies') === 0, 5_000);
    } finally {
      conn.close();
    }
    const r = await cli(['control', 'shutdown', '-d', 'b@h']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '->  b@h: OK\n        shutting down\n');
    let exit: number | string | undefined;
    void workers[1]!.exited.then((c) => (exit = c));
    await waitFor('b@h stopped by remote control', () => exit !== undefined, 20_000);
    assert.equal(exit, 0, workers[1]!.output());
    const s = await cli(['status', '--json']);
    assert.deepEqual(JSON.parse(s.stdout), { 'a@h': { ok: 'pong' } });
  });
});
