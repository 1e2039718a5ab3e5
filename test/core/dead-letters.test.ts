// `asynx dead` on SQLite through real processes: an unknown-task and a poison message are listed, shown,
// requeued to a worker that can run them (SUCCESS), purged; a missing id exits 1; help examples run.

import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Asynx, openDeadLetters, type DeadLetter } from '../../src/index.js';
import { openDb } from '../../src/transports/sqlite-db.js';
import { runCli, startWorker, type RunningWorker } from '../helpers/worker.js';
import { tempDir, waitFor } from '../helpers/tmp.js';

const FAULTS_APP = fileURLToPath(new URL('../fixtures/faults-app.mjs', import.meta.url));
const FIXED_APP = fileURLToPath(new URL('../fixtures/dead-letters-app.mjs', import.meta.url));

/** What `asynx dead list --json` prints for one letter: the API's row, as JSON. */
type Row = DeadLetter;

describe('asynx dead (SQLite)', () => {
  const tmp = tempDir('asynx-dead-');
  const workers: RunningWorker[] = [];
  const clients: Asynx[] = [];
  after(async () => {
    for (const w of workers) await w.stop().catch(() => undefined);
    for (const c of clients) await c.close().catch(() => undefined);
    tmp.cleanup();
  });

  it('lists, shows, requeues (the task then runs to SUCCESS), purges; a missing id exits 1', async () => {
    const brokerUrl = `sqlite://${join(tmp.dir, 'dead.db')}`;
    const env = { ASYNX_BROKER_URL: brokerUrl };
    const ranFile = join(tmp.dir, 'ran.txt');
    const client = new Asynx({ brokerUrl, configFile: false });
    clients.push(client);
    const unknown = await client.sendTask('d.fixed', [ranFile, 'hello']);
    const poison = await client.sendTask('f.poison', [join(tmp.dir, 'poison.txt')]);

    // A worker whose app lacks d.fixed, and whose pool child dies on f.poison: both are dead-lettered.
    const broken = await startWorker({ brokerUrl, app: FAULTS_APP, args: ['-c', '1'], env: { ASYNX_MAX_DELIVERIES: '1' } });
    workers.push(broken);
    const listed = await waitFor('both messages in the dead-letter store', async () => {
      const r = await runCli(['dead', 'list', '--json'], env);
      assert.equal(r.code, 0, r.stderr);
      const rows = JSON.parse(r.stdout) as Row[];
      return rows.length >= 2 ? rows : null;
    }, 60_000, 200);
    assert.equal(await broken.stop(), 0);

    const byTask = new Map(listed.map((r) => [r.taskId, r]));
    const u = byTask.get(unknown.id);
    const p = byTask.get(poison.id);
    assert.ok(u && p, `both task ids listed: ${JSON.stringify(listed)}`);
    assert.equal(u.task, 'd.fixed');
    assert.equal(u.queue, 'celery');
    assert.match(u.reason, /^asynx\.task\.notRegistered: Task 'd\.fixed' is not registered/);
    assert.match(u.argsRepr ?? '', /hello/);
    assert.equal(u.deliveries, 1);
    assert.ok(u.deadLetteredAt && !Number.isNaN(Date.parse(u.deadLetteredAt)));
    assert.equal(p.task, 'f.poison');
    assert.match(p.reason, /delivered 2 times without completing/);
    assert.equal(p.deliveries, 2);

    // -Q filters by original queue; --limit bounds.
    assert.deepEqual(JSON.parse((await runCli(['dead', 'list', '--json', '-Q', 'other'], env)).stdout), []);
    assert.equal((JSON.parse((await runCli(['dead', 'list', '--json', '--limit', '1'], env)).stdout) as Row[]).length, 1);
    const human = await runCli(['dead', 'list'], env);
    assert.match(human.stdout, /^ID +QUEUE +TASK/m);
    assert.match(human.stdout, /d\.fixed/);
    assert.doesNotMatch(human.stdout, /\x1b\[/, 'no colour off a TTY');

    const shown = await runCli(['dead', 'show', u.id, '--json'], env);
    assert.equal(shown.code, 0, shown.stderr);
    const detail = JSON.parse(shown.stdout) as Row & { headers: Record<string, unknown>; body: string };
    assert.equal(detail.headers.id, unknown.id);
    assert.match(detail.body, /hello/);
    const shownText = await runCli(['dead', 'show', u.id], env);
    assert.match(shownText.stdout, /reason: +asynx\.task\.notRegistered/);

    const missing = await runCli(['dead', 'show', '999'], env);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^asynx: No dead letter with id '999'/);
    assert.equal((await runCli(['dead', 'requeue', '999'], env)).code, 1);

    // A fixed worker, then requeue: the task runs to SUCCESS and leaves the store.
    const fixed = await startWorker({ brokerUrl, app: FIXED_APP, args: ['-c', '1'] });
    workers.push(fixed);
    const rq = await runCli(['dead', 'requeue', u.id], env);
    assert.equal(rq.code, 0, rq.stderr);
    assert.match(rq.stdout, new RegExp(`Requeued ${u.id} \\(task ${unknown.id}\\) to celery\\.`));
    await waitFor('the requeued task to succeed', async () => {
      const r = await runCli(['result', unknown.id], env);
      return (JSON.parse(r.stdout) as { state: string }).state === 'SUCCESS' ? r : null;
    }, 30_000, 200);
    assert.equal(readFileSync(ranFile, 'utf8'), 'hello\n', 'it ran exactly once');
    const left = JSON.parse((await runCli(['dead', 'list', '--json'], env)).stdout) as Row[];
    assert.deepEqual(left.map((r) => r.taskId), [poison.id]);
    assert.equal(await fixed.stop(), 0);

    // purge: refused without --yes off a terminal, then empties the store.
    const refused = await runCli(['dead', 'purge'], env);
    assert.equal(refused.code, 64);
    assert.match(refused.stderr, /add --yes to confirm/);
    assert.equal((JSON.parse((await runCli(['dead', 'list', '--json'], env)).stdout) as Row[]).length, 1, 'nothing deleted when refused');
    const purged = await runCli(['dead', 'purge', '--yes'], env);
    assert.equal(purged.code, 0, purged.stderr);
    assert.match(purged.stdout, /Purged 1 dead letter\./);
    assert.deepEqual(JSON.parse((await runCli(['dead', 'list', '--json'], env)).stdout), []);
  });

  it('requeue resets the delivery count, keeps priority, sends copies once; usage errors exit 64', async () => {
    const path = join(tmp.dir, 'reset.db');
    const db = openDb(path);
    // Two copies of one message (dead-lettering is at-least-once).
    for (let i = 0; i < 2; i++) db.prepare('INSERT INTO dead_letters (queue, reason, deliveries, properties, headers, body, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)').run('q1', 'test', 6, JSON.stringify({ priority: 7 }), JSON.stringify({ id: 'abc', task: 't.x' }), '[[1], {}, {}]', Date.now());
    db.close();
    const env = { ASYNX_BROKER_URL: `sqlite://${path}` };
    assert.equal((await runCli(['dead', 'requeue'], env)).code, 64);
    assert.equal((await runCli(['dead', 'requeue', '1', '--all'], env)).code, 64);
    assert.equal((await runCli(['dead', 'list', '--limit', '0'], env)).code, 64);
    const typo = await runCli(['dead', 'list', '--jsn'], env);
    assert.equal(typo.code, 64);
    assert.match(typo.stderr, /^asynx: unknown option '--jsn' \(did you mean '--json'\?\) \(run asynx dead list --help for usage\)$/m);
    // By task id, to another queue.
    const r = await runCli(['dead', 'requeue', 'abc', '-Q', 'q2'], env);
    assert.equal(r.code, 0, r.stderr);
    const check = openDb(path);
    const msg = check.prepare('SELECT queue, priority, deliveries, headers FROM messages').all() as Array<{ queue: string; priority: number; deliveries: number; headers: string }>;
    const deadLeft = (check.prepare('SELECT COUNT(*) AS n FROM dead_letters').get() as { n: number }).n;
    check.close();
    assert.deepEqual(msg.map((m) => [m.queue, m.priority, m.deliveries, JSON.parse(m.headers).id]), [['q2', 7, 0, 'abc']]);
    assert.equal(deadLeft, 0, 'both copies left the store');
  });

  it('the API: openDeadLetters(url) lists, shows, requeues and purges; missing ids reject with asynx.dead.notFound', async () => {
    const path = join(tmp.dir, 'api.db');
    const db = openDb(path);
    for (const [q, id] of [['qa', 'a1'], ['qb', 'b1'], ['qa', 'a2']]) db.prepare('INSERT INTO dead_letters (queue, reason, deliveries, properties, headers, body, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)').run(q, 'why', 1, '{}', JSON.stringify({ id, task: 't.x', argsrepr: `['${id}']` }), '[[], {}, {}]', 1_700_000_000_000);
    db.close();
    const dead = await openDeadLetters(`sqlite://${path}`);
    try {
      assert.equal(dead.kind, 'sqlite');
      assert.deepEqual((await dead.list({ queue: 'qa' })).map((d) => [d.id, d.taskId, d.argsRepr, d.deadLetteredAt]), [['1', 'a1', "['a1']", '2023-11-14T22:13:20.000Z'], ['3', 'a2', "['a2']", '2023-11-14T22:13:20.000Z']]);
      assert.equal((await dead.list({ limit: 1 })).length, 1);
      await assert.rejects(dead.list({ limit: 0 }), { code: 'asynx.dead.badLimit' });
      assert.equal((await dead.show('b1')).id, '2', 'show takes a task id too');
      await assert.rejects(dead.show('nope'), (err: Error & { code?: string; exitCode?: number }) => err.code === 'asynx.dead.notFound' && err.exitCode === 1);
      await assert.rejects(dead.requeue('nope'), { code: 'asynx.dead.notFound' });
      assert.deepEqual((await dead.requeue('2')).requeued, [{ id: '2', taskId: 'b1', queue: 'qb' }]);
      assert.equal(await dead.purge({ queue: 'qa' }), 2);
      assert.deepEqual(await dead.list(), []);
    } finally {
      await dead.close();
      await dead.close();
    }
  });

  it('every example in asynx dead --help runs as written (exit 0)', async () => {
    const path = join(tmp.dir, 'examples.db');
    const db = openDb(path);
    for (const id of ['e1', 'e2']) db.prepare('INSERT INTO dead_letters (queue, reason, deliveries, properties, headers, body, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)').run('celery', 'test', 1, '{}', JSON.stringify({ id, task: 't.x' }), '[[], {}, {}]', Date.now());
    db.close();
    const help = await runCli(['dead', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /Exit codes: 0 ok · 1 no dead letter with that id · 64 bad usage · 69 broker unavailable\./);
    const examples = [...help.stdout.matchAll(/^ {2}\$ asynx (.+)$/gm)].map((m) => m[1]!.split(/ +/));
    assert.ok(examples.length >= 5);
    for (const argv of examples) {
      const r = await runCli(argv, { ASYNX_BROKER_URL: `sqlite://${path}` });
      assert.equal(r.code, 0, `asynx ${argv.join(' ')}: ${r.stderr}`);
    }
    assert.ok(existsSync(path));
  });
});
