// Every `$ asynx …` example of `asynx --help` and the worker/call/result/purge/dead helps runs as written (or is skipped).

import assert from 'node:assert/strict';
import { hostname } from 'node:os';
import { after, before, describe, it } from 'node:test';
import { waitGone } from '../helpers/process.js';
import { waitFor } from '../helpers/tmp.js';
import { runCli } from '../helpers/worker.js';
import { exampleProject, ok } from '../helpers/example-project.js';

/** The helps whose examples are checked. */
const HELPS = [[], ['worker'], ['call'], ['result'], ['purge'], ['dead'], ['dead', 'list'], ['dead', 'show'], ['dead', 'requeue'], ['dead', 'purge'], ['inspect'], ['control'], ['status'], ['revoke'], ['events'], ['dashboard'], ['beat']];

const EXAMPLE_ID = '1e054e15-ea11-4e56-a3d6-b138371690bc';

const SKIP: Record<string, string> = {
  'asynx dashboard --address 0.0.0.0 --auth': 'listens on every interface (tests stay on loopback); test/core/dashboard.test.ts checks auth and the refusal without it',
  'asynx worker -A ./tasks.mjs -b amqp://guest:guest@127.0.0.1:5672//': 'needs a RabbitMQ server on 127.0.0.1:5672 (test/amqp/* start a private node on another port)',
  'asynx events': 'runs until INT/TERM: test/events/events-amqp.test.ts runs it (with -b) and stops it with TERM',
  'asynx events -b amqp://guest:guest@127.0.0.1:5672//': 'needs a RabbitMQ server on 127.0.0.1:5672 (test/events/events-amqp.test.ts runs it on a private node)',
};

/** How each example is run. */
const RUN: Record<string, string> = {
  'asynx worker -A ./tasks.mjs -c 4': 'foreground until `ready.`, serves the call/result examples; TERM → exit 0',
  'asynx worker -A ./tasks.mjs -n w1@%h -Q emails,default -l debug': 'foreground until `ready.` for emails and default; TERM → exit 0',
  'asynx worker -A ./tasks.mjs --detach --pidfile ./.asynx/run/%n.pid --logfile ./.asynx/log/%n%I.log': 'exits 0, leaves a live node (TERM by pid)',
  'asynx worker -A ./tasks.mjs -- prefetchMultiplier=1 acks_late=true visibility_timeout=60s': 'foreground until `ready.`; TERM → exit 0',
  'asynx worker -A ./tasks.mjs -P async -c 200': 'foreground until `ready.` (concurrency: 200 (async)); TERM → exit 0',
  'asynx worker -A ./tasks.mjs -P threads --autoscale=8,2': 'foreground until `ready.` (threads, autoscale 2..8); TERM → exit 0',
  "asynx call tasks.add --args '[2, 3]' --wait": 'prints 5',
  'asynx call asynx.http.dispatch --args \'[{"url": "http://127.0.0.1:8080/hook"}]\' --countdown 30': 'prints an id (never due during the test; purged)',
  'asynx call emails.send --kwargs \'{"to": "a@b.c"}\' -Q emails': 'prints an id (no consumer for emails; purged)',
  [`asynx result ${EXAMPLE_ID}`]: 'as written, an id nobody sent: exit 0, state PENDING',
  [`asynx result ${EXAMPLE_ID} --wait --timeout 10`]: 'the example id replaced by that of a tasks.add call that ran: SUCCESS',
  'asynx purge': 'exit 0, Purged …',
  'asynx purge -Q emails,default': 'exit 0, Purged … (the emails.send call)',
  'asynx dead list': 'after two calls of an unregistered task: the header and the rows',
  'asynx dead list -Q celery --json --limit 20': 'JSON array of two',
  'asynx dead show 1': 'exit 0, names no.such.task',
  'asynx dead show 1 --json': 'JSON with headers and body',
  'asynx dead requeue 1': 'exit 0',
  'asynx dead requeue --all -Q celery': 'exit 0',
  'asynx dead purge --yes': 'exit 0',
  'asynx dead purge -Q celery --yes': 'exit 0',
  'asynx multi start 3 -A ./tasks.mjs -c 2': 'exit 0, three nodes up',
  // `asynx --help` showed `--timeout 60`, which multi refuses (exit 64: long options take their value after '=').
  'asynx multi stopwait 3 --timeout=60': 'exit 0, the three nodes are gone',
  'asynx help multi': 'exit 0, the multi grammar',
  'asynx inspect ping': 'against a worker -n w1@%h: exit 0, pong',
  'asynx inspect stats --json': 'JSON by node with the pid',
  'asynx inspect registered --timeout 5': 'lists tasks.add',
  'asynx inspect active -d w1@example.com,w2@example.com': 'w1@example.com replaced by the node name (w2 is not running): exit 0, w1 answers',
  'asynx control rate_limit tasks.add 10/s': 'exit 0, one reply (OK, or ERROR where a node does not implement it)',
  'asynx control pool_grow 2': 'exit 0, one reply',
  [`asynx control revoke ${EXAMPLE_ID}`]: 'exit 0, flagged as revoked',
  'asynx control shutdown -d w1@example.com': 'the example node name replaced: exit 0, the worker stops',
  'asynx status': 'exit 0, 1 node online',
  'asynx status --json --timeout 3': 'JSON {node: {ok: pong}}',
  [`asynx revoke ${EXAMPLE_ID}`]: 'exit 0, flagged as revoked',
  [`asynx revoke ${EXAMPLE_ID} --terminate --signal SIGKILL`]: 'exit 0 (the id is not running)',
  'asynx dashboard': 'in the background until its URL line; the page answers 200 on 127.0.0.1:5555; TERM → exit 0',
  'asynx dashboard --port 8080 --read-only': 'the same on 127.0.0.1:8080, the page says read-only; TERM → exit 0',
  'asynx events --replay --count 2': 'after the worker -c 4 test: two dump lines of its events (started, then a heartbeat or shutdown), exit 0',
  'asynx events --json --replay --count 1': 'after the worker -c 4 test: its worker-online as one JSON line, exit 0',
  'asynx worker -A ./tasks.mjs -B': 'foreground until `ready.` and `beat: 2 entries`; TERM → exit 0',
  'asynx beat -A ./tasks.mjs': 'in the background with the -B worker until ready; TERM → exit 0',
  'asynx beat -A ./tasks.mjs --list': 'exit 0, the README entries add-every-10s and nightly-report',
};

const examples = new Set<string>();
const ran = new Set<string>();

function textOf(command: string, subst: Record<string, string> = {}): string {
  assert.ok(command in RUN, `not in the RUN table: ${command}`);
  assert.ok(examples.has(command), `no help shows this example any more: ${command}`);
  ran.add(command);
  let text = command;
  for (const [k, v] of Object.entries(subst)) text = text.split(k).join(v);
  return text;
}

describe('--help examples run as written', () => {
  const p = exampleProject(textOf);
  before(async () => {
    for (const args of HELPS) {
      const r = await runCli([...args, '--help']);
      assert.equal(r.code, 0, `asynx ${args.join(' ')} --help`);
      for (const m of r.stdout.matchAll(/^\s*\$ (asynx .*?)\s*$/gm)) examples.add(m[1]!);
    }
  });
  after(async () => {
    await p.setup('asynx multi stopwait 3 --kill-after=10', 30_000).catch(() => undefined);
    await p.cleanup();
  });

  it('every example is RUN or SKIP, and every table entry is still shown', () => {
    assert.ok(examples.size > 15, `examples found: ${[...examples].join(' | ')}`);
    assert.deepEqual([...examples].filter((c) => !(c in RUN) && !(c in SKIP)).map((c) => `--help example not covered: ${c}`), []);
    assert.deepEqual([...Object.keys(RUN), ...Object.keys(SKIP)].filter((c) => !examples.has(c)).map((c) => `table entry no longer in any --help: ${c}`), []);
  });

  it('worker -c 4 with call / result / dead / purge', async () => {
    const worker = p.background('asynx worker -A ./tasks.mjs -c 4');
    await waitFor('worker ready', () => worker.isDone() || / ready\.$/m.test(worker.output()), 30_000);
    assert.ok(!worker.isDone(), worker.output());

    const five = await p.sh("asynx call tasks.add --args '[2, 3]' --wait");
    ok(five, 'call --wait');
    assert.equal(five.stdout.trim(), '5');
    for (const c of ['asynx call asynx.http.dispatch --args \'[{"url": "http://127.0.0.1:8080/hook"}]\' --countdown 30', 'asynx call emails.send --kwargs \'{"to": "a@b.c"}\' -Q emails']) {
      const r = await p.sh(c);
      ok(r, c);
      assert.match(r.stdout.trim(), /^[0-9a-f-]{36}$/);
    }
    const pending = await p.sh(`asynx result ${EXAMPLE_ID}`);
    ok(pending, 'result of an unknown id');
    assert.equal((JSON.parse(pending.stdout) as { state: string }).state, 'PENDING');
    const id = (await p.setup("asynx call tasks.add --args '[1, 2]'")).stdout.trim();
    const res = await p.sh(`asynx result ${EXAMPLE_ID} --wait --timeout 10`, { [EXAMPLE_ID]: id });
    ok(res, 'result --wait');
    assert.deepEqual((JSON.parse(res.stdout) as { state: string; result: number }), { id, state: 'SUCCESS', result: 3, traceback: null });

    for (const n of [1, 2]) ok(await p.setup(`asynx call no.such.task --args '[${n}]'`), 'setup call no.such.task');
    await waitFor('two dead letters', () => (worker.output().match(/unregistered task/g) ?? []).length >= 2, 20_000);
    worker.remember();
    assert.equal(await worker.stop('SIGTERM', 30_000), 0, worker.output());

    const list = await p.sh('asynx dead list');
    ok(list, 'dead list');
    assert.match(list.stdout, /^ID\s+QUEUE\s+TASK/);
    const rows = await p.sh('asynx dead list -Q celery --json --limit 20');
    ok(rows, 'dead list --json');
    assert.equal((JSON.parse(rows.stdout) as unknown[]).length, 2);
    const show = await p.sh('asynx dead show 1');
    ok(show, 'dead show 1');
    assert.match(show.stdout, /no\.such\.task/);
    const showJson = await p.sh('asynx dead show 1 --json');
    ok(showJson, 'dead show 1 --json');
    assert.ok('headers' in (JSON.parse(showJson.stdout) as object));
    ok(await p.sh('asynx dead requeue 1'), 'dead requeue 1');
    ok(await p.sh('asynx dead requeue --all -Q celery'), 'dead requeue --all');
    ok(await p.sh('asynx dead purge --yes'), 'dead purge --yes');
    ok(await p.sh('asynx dead purge -Q celery --yes'), 'dead purge -Q celery --yes');

    const purge = await p.sh('asynx purge');
    ok(purge, 'purge');
    assert.match(purge.stdout, /Purged [1-9]/, 'the two requeued dead letters (and the http call) in celery');
    const purgeQ = await p.sh('asynx purge -Q emails,default');
    ok(purgeQ, 'purge -Q');
    assert.match(purgeQ.stdout, /Purged 1 message/, 'the emails.send call');
  });

  it('asynx events examples replay the events of the worker -c 4 example', async () => {
    // A worker that lived less than its 2 s heartbeat interval left two events, online and offline.
    const dump = await p.sh('asynx events --replay --count 2');
    ok(dump, 'events --replay --count 2');
    const lines = dump.stdout.trim().split('\n');
    assert.equal(lines.length, 2, dump.stdout);
    assert.match(lines[0]!, /^\S+@\S+ \[[\d-]+ [\d:.]+\] started: active=0, /);
    assert.match(lines[1]!, /^\S+@\S+ \[[\d-]+ [\d:.]+\] (heartbeat|shutdown): /);
    const json = await p.sh('asynx events --json --replay --count 1');
    ok(json, 'events --json --replay --count 1');
    assert.equal((JSON.parse(json.stdout) as { type: string }).type, 'worker-online');
  });

  it('the other worker examples start and stop cleanly', async () => {
    for (const c of ['asynx worker -A ./tasks.mjs -n w1@%h -Q emails,default -l debug', 'asynx worker -A ./tasks.mjs -- prefetchMultiplier=1 acks_late=true visibility_timeout=60s', 'asynx worker -A ./tasks.mjs -P async -c 200', 'asynx worker -A ./tasks.mjs -P threads --autoscale=8,2']) {
      const worker = p.background(c);
      await waitFor(`ready: ${c}`, () => worker.isDone() || / ready\.$/m.test(worker.output()), 30_000);
      assert.ok(!worker.isDone(), `${c} exited during start:\n${worker.output()}`);
      worker.remember();
      assert.equal(await worker.stop('SIGTERM', 30_000), 0, worker.output());
    }
    const before = new Set(p.nodePids().values());
    ok(await p.sh('asynx worker -A ./tasks.mjs --detach --pidfile ./.asynx/run/%n.pid --logfile ./.asynx/log/%n%I.log'), 'worker --detach');
    const pid = await waitFor('the detached node', () => [...p.nodePids().values()].find((x) => !before.has(x)), 30_000);
    process.kill(pid, 'SIGTERM');
    assert.ok(await waitGone([pid], 30_000));
    const help = await p.sh('asynx help multi');
    ok(help, 'help multi');
    assert.match(help.stdout, /Usage: asynx multi/);
  });

  it('inspect / control / status / revoke against a worker', async () => {
    const worker = p.background('asynx worker -A ./tasks.mjs -n w1@%h -Q emails,default -l debug');
    await waitFor('worker ready', () => worker.isDone() || / ready\.$/m.test(worker.output()), 30_000);
    assert.ok(!worker.isDone(), worker.output());
    const node = `w1@${hostname()}`;
    const ping = await p.sh('asynx inspect ping');
    ok(ping, 'inspect ping');
    assert.match(ping.stdout, new RegExp(`^->  ${node.replace(/\./g, '\\.')}: OK\n {8}pong\n\n1 node online\.\n$`));
    const stats = await p.sh('asynx inspect stats --json');
    ok(stats, 'inspect stats --json');
    assert.ok(((JSON.parse(stats.stdout) as Record<string, { pid: number }>)[node]?.pid ?? 0) > 0, stats.stdout);
    const registered = await p.sh('asynx inspect registered --timeout 5');
    ok(registered, 'inspect registered');
    assert.match(registered.stdout, /^ {4}\* tasks\.add$/m);
    const active = await p.sh('asynx inspect active -d w1@example.com,w2@example.com', { 'w1@example.com': node });
    ok(active, 'inspect active -d');
    assert.match(active.stdout, /: OK\n {4}- empty -\n\n1 node online\./);
    for (const c of ['asynx control rate_limit tasks.add 10/s', 'asynx control pool_grow 2']) {
      const r = await p.sh(c);
      ok(r, c);
      assert.match(r.stdout, new RegExp(`^->  ${node.replace(/\./g, '\\.')}: (OK|ERROR)\n`));
    }
    for (const c of [`asynx control revoke ${EXAMPLE_ID}`, `asynx revoke ${EXAMPLE_ID}`, `asynx revoke ${EXAMPLE_ID} --terminate --signal SIGKILL`]) {
      const r = await p.sh(c);
      ok(r, c);
      assert.match(r.stdout, /: OK\n/);
      // Celery's answer to terminating an id that does not run there names no id.
      assert.match(r.stdout, c.includes('--terminate') ? /terminate: tasks unknown/ : new RegExp(EXAMPLE_ID));
    }
    const status = await p.sh('asynx status');
    ok(status, 'status');
    assert.match(status.stdout, /^->  .*: OK\n\n1 node online\.\n$/);
    const statusJson = await p.sh('asynx status --json --timeout 3');
    ok(statusJson, 'status --json');
    assert.deepEqual(JSON.parse(statusJson.stdout), { [node]: { ok: 'pong' } });
    worker.remember();
    const shutdown = await p.sh('asynx control shutdown -d w1@example.com', { 'w1@example.com': node });
    ok(shutdown, 'control shutdown');
    assert.match(shutdown.stdout, /: OK\n/);
    await waitFor('the worker stopped by remote control', () => worker.isDone(), 30_000);
    assert.equal(await worker.exited, 0, worker.output());
    const none = await p.setup('asynx status --timeout 0.5');
    assert.equal(none.code, 1, 'no node online: exit 1');
    assert.match(none.stderr, /No nodes replied within time constraint/);
  });

  it('asynx multi start 3 … -c 2, then asynx multi stopwait 3 --timeout=60', async () => {
    ok(await p.sh('asynx multi start 3 -A ./tasks.mjs -c 2'), 'multi start 3');
    const pids = ['asynx1', 'asynx2', 'asynx3'].map((n) => p.nodePids().get(n) ?? 0);
    assert.ok(pids.every((x) => x > 0), pids.join(','));
    ok(await p.sh('asynx multi stopwait 3 --timeout=60', {}, 90_000), 'multi stopwait 3 --timeout=60 (the example in `asynx --help`)');
    assert.ok(await waitGone(pids, 5_000));
  });

  it('asynx dashboard serves the page until TERM', async () => {
    for (const [c, port, readOnly] of [['asynx dashboard', 5555, false], ['asynx dashboard --port 8080 --read-only', 8080, true]] as const) {
      const d = p.background(c);
      const m = await waitFor(`dashboard URL: ${c}`, () => d.isDone() || /asynx dashboard on (http:\S+)/.exec(d.output()), 30_000);
      assert.ok(m !== true, `${c} exited:\n${d.output()}`);
      assert.equal(m[1], `http://127.0.0.1:${port}/`);
      const page = await fetch(m[1]);
      assert.equal(page.status, 200);
      assert.match(await page.text(), new RegExp(`name="read-only" content="${readOnly}"`));
      assert.equal(await d.stop('SIGTERM', 20_000), 0, d.output());
    }
  });

  it('asynx worker -B and asynx beat run the periodic entries; asynx beat --list lists them', async () => {
    const list = await p.sh('asynx beat -A ./tasks.mjs --list');
    ok(list, 'beat --list');
    assert.match(list.stdout, /^add-every-10s\s/m);
    assert.match(list.stdout, /^nightly-report\s/m);
    const worker = p.background('asynx worker -A ./tasks.mjs -B');
    await waitFor('worker -B ready', () => worker.isDone() || (/ ready\.$/m.test(worker.output()) && /beat: 2 entries/.test(worker.output())), 30_000);
    assert.ok(!worker.isDone(), worker.output());
    const beat = p.background('asynx beat -A ./tasks.mjs');
    await waitFor('beat ready', () => beat.isDone() || / ready\.$/m.test(beat.output()), 30_000);
    assert.ok(!beat.isDone(), beat.output());
    assert.equal(await beat.stop('SIGTERM', 30_000), 0, beat.output());
    assert.equal(await worker.stop('SIGTERM', 30_000), 0, worker.output());
  });

  it('every RUN example ran', () => {
    assert.deepEqual(Object.keys(RUN).filter((c) => !ran.has(c)), []);
  });
});
