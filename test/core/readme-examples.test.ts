// Every ```sh line of README.md runs as written in a temp project (or is skipped with a reason), from one table.

import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { childPidsOf, waitGone } from '../helpers/process.js';
import { waitFor } from '../helpers/tmp.js';
import { ROOT } from '../helpers/worker.js';
import { exampleProject, LINE_TIMEOUT_MS, ok } from '../helpers/example-project.js';

/** One command of a ```sh block: `text` as written (continuations joined), `command` without its comment. */
interface ShLine {
  text: string;
  command: string;
  comment: string;
  lineNo: number;
}

/** Cuts a trailing `# comment` that is outside quotes and starts a word. */
function splitComment(text: string): { command: string; comment: string } {
  let quote: string | null = null;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote !== null) {
      if (c === quote) quote = null;
    } else if (c === "'" || c === '"') {
      quote = c;
    } else if (c === '#' && (i === 0 || /\s/.test(text[i - 1]!))) {
      return { command: text.slice(0, i).trim(), comment: text.slice(i + 1).trim() };
    }
  }
  return { command: text.trim(), comment: '' };
}

/** Every command line of every ```sh block, in README order. */
function shLines(markdown: string): ShLine[] {
  const out: ShLine[] = [];
  const lines = markdown.split('\n');
  let inSh = false;
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!;
    if (!inSh) {
      if (raw.trim() === '```sh') inSh = true;
      continue;
    }
    if (raw.trim() === '```') {
      inSh = false;
      continue;
    }
    const lineNo = i + 1;
    let text = raw;
    while (text.endsWith('\\') && i + 1 < lines.length) text = `${text.slice(0, -1)} ${lines[++i]!.trim()}`;
    if (text.trim() === '' || text.trim().startsWith('#')) continue;
    out.push({ text: text.trim(), ...splitComment(text), lineNo });
  }
  return out;
}

const SETUP = 'the set-up commands themselves (CI runs npm test; test/unit/package-scripts.test.ts checks the scripts)';
const RABBIT = 'needs the remote RabbitMQ host rabbit.internal (test/amqp/* run the same commands on a private RabbitMQ node)';

const REDIS = 'needs the remote Redis host redis.internal (test/interop/redis-celery.test.ts runs asynx workers on a private redis-server)';

/** README lines that are not run, each with the reason. */
const SKIP: Record<string, string> = {
  'npm install && npm run demo': SETUP,
  'npm install && npm test': SETUP,
  'sudo cp asynx@.service /etc/systemd/system/ && sudo systemctl daemon-reload && sudo systemctl enable --now asynx@w1 asynx@w2':
    'needs sudo and a running systemd (test/multi/init-systemd.test.ts checks the rendered units)',
  'export ASYNX_BROKER_URL=amqp://user:pass@rabbit.internal:5672//': RABBIT,
  'asynx worker -A ./tasks.mjs -b amqp://user:pass@rabbit.internal:5672// --result-backend rpc:// -Q celery,other -c 4': RABBIT,
  'asynx multi start w1 w2 -A ./tasks.mjs -c 4 -b amqp://user:pass@rabbit.internal:5672//': RABBIT,
  'asynx worker -A ./tasks.mjs -b redis://redis.internal:6379/0 -Q celery,other -c 4': REDIS,
  "asynx worker -A ./tasks.mjs -b 'redis://redis.internal:6379/0?visibility_timeout=600'": REDIS,
  'asynx beat -A ./tasks.mjs -b redis://redis.internal:6379/0': 'needs the remote Redis host redis.internal (test/beat/beat-redis.test.ts runs two asynx beat on a private redis-server)',
  'asynx dead list -b redis://redis.internal:6379/0': 'needs the remote Redis host redis.internal (test/redis/dead-letters.test.ts runs asynx dead on a private redis-server)',
  "asynx worker -A ./tasks.mjs -b 'redis+sentinel://sentinel1.internal:26379,sentinel2.internal:26379/0?master_name=mymaster'":
    'needs remote sentinels sentinel1.internal, sentinel2.internal (test/redis/sentinel.test.ts runs a worker through a private master, replica and sentinel)',
  'asynx dashboard --port 8080 --read-only': 'the same command is run by test/core/help-examples.test.ts (page served, no action buttons, TERM → exit 0); port 8080 is not freed between the two files',
  'celery -A proj inspect ping -d w1@host': 'needs a Python Celery project `proj` on RabbitMQ (test/interop/pidbox.test.ts runs celery inspect against an asynx node)',
};

/** README lines that are run, each with how (the setup it needs and what is checked). */
const RUN: Record<string, string> = {
  'asynx worker -A ./tasks.mjs -c 4': 'foreground until `ready.`; serves the CLI lines below; TERM → exit 0',
  'asynx worker -A ./tasks.mjs -n w1@%h -Q emails,celery -l debug -f ./.asynx/log/%n%I.log': '`ready.` in ./.asynx/log/w1.log; TERM → exit 0',
  'asynx worker -A ./tasks.mjs --detach --pidfile ./.asynx/run/%n.pid --logfile ./.asynx/log/%n%I.log': 'exits 0; its pidfile holds a live pid, which gets TERM',
  "asynx call tasks.add --args '[2, 3]' --wait": 'with the worker running: prints 5',
  'asynx call emails.send --kwargs \'{"to": "a@b.c"}\' -Q emails --countdown 30': 'prints a task id (the queue emails has no consumer: purged below)',
  'asynx result <id> --wait --timeout 10': '<id> = the id of a tasks.add call that ran: JSON with id, state SUCCESS, result, traceback',
  'asynx purge -Q emails,celery': 'after the dead-letter lines: purges the emails.send call and the two requeued dead letters',
  'asynx --help; asynx <command> --help': '<command> = each command `asynx --help` lists (worker call result purge dead multi init): exit 0, both print Examples',
  'asynx help multi': 'same output as `asynx multi help`; `asynx help init` exits 0 too',
  'asynx dead list': 'after two calls of an unregistered task (worker stopped since): the header and both rows',
  'asynx dead list -Q celery --json --limit 20': 'JSON array with the keys the comment names',
  'asynx dead show 1 --json': 'the same keys plus kwargsRepr, properties, headers, body',
  'asynx dead requeue 1': 'exit 0; id 1 leaves the store',
  'asynx dead requeue --all -Q celery': 'exit 0; the store is empty',
  'asynx dead purge --yes': 'exit 0 (on the now empty store)',
  'asynx multi start 3 -A ./tasks.mjs -c 4': 'exit 0, OK for asynx1..3 (run twice: again before `multi stop 3 -INT`)',
  'asynx multi start web reports -A ./tasks.mjs -c 2 -c:reports 1 -Q:reports reports': 'exit 0, web and reports up (stopped by the test at the end)',
  'asynx multi status 3': 'exit 0, lists asynx1..3',
  'asynx multi status': 'exit 0, lists the five nodes with pidfiles',
  'asynx multi stopwait 3 --timeout=120 --kill-after=150': 'exit 0; the pids of asynx1..3 are gone',
  'asynx multi restart 3 -A ./tasks.mjs -c 4': 'exit 0; asynx1..3 have new pids',
  'asynx multi stop 3 -INT': 'exit 0 (after a second `multi start 3`)',
  'asynx multi kill 3': 'exit 0; then every asynx1..3 pid is gone',
  'asynx multi show 3': 'exit 0, one worker command line per node',
  'asynx multi names 3': 'exit 0, asynx1@… asynx2@… asynx3@…',
  "asynx multi expand '%n.log' 3": 'prints asynx1.log asynx2.log asynx3.log',
  'asynx multi get asynx1@$(hostname) 3': 'exit 0, the command line of asynx1',
  'asynx multi help': 'exit 0, the multi grammar',
  'asynx init systemd --nodes=w1,w2 --app=./tasks.mjs --user=deploy': 'exit 0; asynx@.service and asynx.service are written',
  'asynx worker -A ./tasks.mjs -P async -c 200': 'foreground until `ready.` with `concurrency: 200 (async)`; runs tasks.add; TERM → exit 0',
  'asynx worker -A ./tasks.mjs -P threads -c 4': 'foreground until `ready.` with `concurrency: 4 (threads)`; runs tasks.add; TERM → exit 0',
  'asynx worker -A ./tasks.mjs --autoscale=8,2': 'foreground until `ready.` with `concurrency: {min=2, max=8} (prefork)` (Celery\'s banner; the pool starts at min); runs tasks.add; TERM → exit 0',
  'asynx worker -A ./tasks.mjs -P solo': 'foreground until `ready.` with `concurrency: 1 (solo)`; runs tasks.add; TERM → exit 0',
  'asynx worker -A ./tasks.mjs -E': 'foreground until `ready.`; serves the Monitoring lines below; TERM → exit 0',
  'asynx status': 'with the -E worker: "->  asynx@…: OK" and "1 node online.", exit 0; exit 1 once it stopped',
  'asynx inspect ping': 'pong from the one node',
  'asynx inspect stats --json': 'JSON {node: stats} with total, pool, rusage, broker, prefetch_count',
  'asynx inspect active_queues': 'the celery queue',
  'asynx control rate_limit tasks.add 10/s': '"new rate limit set successfully"; registered then shows rate_limit=10/s',
  'asynx control pool_grow 2': 'the worker gains two pool children',
  'asynx revoke <id> --terminate --signal SIGKILL': '<id> = a tasks.add call with --countdown 3: ends REVOKED with no traceback, never runs',
  'asynx events': 'prints the node\'s heartbeat lines in dump form; TERM → exit 0',
  'asynx events --json --replay --count 10': '10 JSON lines from the events table, worker-online among them; exit 0',
  'asynx dashboard': 'prints its URL; GET / is the page, /api/snapshot lists the node; TERM → exit 0',
  'asynx multi stopwait w1 w2': 'on local SQLite nodes w1 w2 started by the test (`multi start w1 w2 -A ./tasks.mjs -c 1`): exit 0, both gone',
  'asynx beat -A ./tasks.mjs --list': 'exit 0: add-every-10s and nightly-report with their next run (nightly in Europe/Berlin time)',
  'asynx beat -A ./tasks.mjs': 'in the background with the -B worker: ready; one of the two sends add-every-10s, which the worker runs; TERM → exit 0',
  'asynx worker -A ./tasks.mjs -B': 'foreground until `ready.` and its `beat: 2 entries` line; runs the add-every-10s sends; TERM → exit 0',
};

const readme = shLines(readFileSync(join(ROOT, 'README.md'), 'utf8'));
const byCommand = new Map(readme.map((l) => [l.command, l]));
const ran = new Set<string>();

/** The README text for a RUN command (its comment kept: bash ignores it), marking it as run. */
function lineText(command: string, subst: Record<string, string> = {}): string {
  assert.ok(command in RUN, `not in the RUN table: ${command}`);
  const line = byCommand.get(command);
  assert.ok(line, `README no longer has: ${command}`);
  ran.add(command);
  let text = line.text;
  for (const [k, v] of Object.entries(subst)) text = text.split(k).join(v);
  return text;
}


describe('README sh examples: the table covers every line', () => {
  it('every README sh line is RUN or SKIP (with a reason)', () => {
    assert.ok(readme.length > 20, 'the parser found the sh blocks');
    const missing = readme.filter((l) => !(l.command in RUN) && !(l.command in SKIP));
    assert.deepEqual(missing.map((l) => `README example not covered: line ${l.lineNo}: ${l.command}`), []);
    for (const [cmd, why] of Object.entries(SKIP)) assert.ok(why.length > 10, `skip reason for ${cmd}`);
  });

  it('every table entry is still in README', () => {
    const stale = [...Object.keys(RUN), ...Object.keys(SKIP)].filter((c) => !byCommand.has(c));
    assert.deepEqual(stale.map((c) => `table entry no longer in README: ${c}`), []);
  });
});

describe('README sh examples: worker, CLI and dead letters (embedded SQLite)', () => {
  const p = exampleProject(lineText);
  after(() => p.cleanup());

  it('asynx worker -c 4 serves call / result; dead letters; purge', async () => {
    const worker = p.background('asynx worker -A ./tasks.mjs -c 4');
    await waitFor('worker ready', () => worker.isDone() || / ready\.$/m.test(worker.output()), 30_000);
    assert.ok(!worker.isDone(), `worker exited during start:\n${worker.output()}`);
    await waitFor('4 pool child processes', () => childPidsOf(worker.pid).length === 4, 30_000);

    const five = await p.sh("asynx call tasks.add --args '[2, 3]' --wait");
    ok(five, 'call --wait');
    assert.equal(five.stdout.trim(), '5');

    const email = await p.sh('asynx call emails.send --kwargs \'{"to": "a@b.c"}\' -Q emails --countdown 30');
    ok(email, 'call emails.send');
    assert.match(email.stdout.trim(), /^[0-9a-f-]{36}$/);

    const setup = await p.setup("asynx call tasks.add --args '[20, 22]'");
    ok(setup, 'setup call');
    const res = await p.sh('asynx result <id> --wait --timeout 10', { '<id>': setup.stdout.trim() });
    ok(res, 'result --wait');
    const json = JSON.parse(res.stdout) as Record<string, unknown>;
    assert.deepEqual(Object.keys(json).sort(), ['id', 'result', 'state', 'traceback']);
    assert.equal(json.id, setup.stdout.trim());
    assert.equal(json.state, 'SUCCESS');
    assert.equal(json.result, 42);

    // Two messages the worker cannot run: an unregistered task name (setup, not a README line).
    for (const n of [1, 2]) ok(await p.setup(`asynx call no.such.task --args '[${n}]'`), 'setup call no.such.task');
    await waitFor('two dead letters', () => (worker.output().match(/unregistered task/g) ?? []).length >= 2, 20_000);
    worker.remember();
    assert.equal(await worker.stop('SIGTERM', 30_000), 0, `warm shutdown exits 0:\n${worker.output()}`);

    const list = await p.sh('asynx dead list');
    ok(list, 'dead list');
    assert.match(list.stdout, /^ID\s+QUEUE\s+TASK\s+ARGS\s+N\s+DEAD-LETTERED AT\s+REASON/);
    assert.equal((list.stdout.match(/no\.such\.task/g) ?? []).length >= 2, true, list.stdout);

    const listJson = await p.sh('asynx dead list -Q celery --json --limit 20');
    ok(listJson, 'dead list --json');
    const rows = JSON.parse(listJson.stdout) as Record<string, unknown>[];
    assert.equal(rows.length, 2);
    for (const k of ['id', 'queue', 'reason', 'deliveries', 'task', 'taskId', 'argsRepr', 'deadLetteredAt']) assert.ok(k in rows[0]!, k);
    assert.equal(rows[0]!.id, '1');

    const show = await p.sh('asynx dead show 1 --json');
    ok(show, 'dead show 1');
    const one = JSON.parse(show.stdout) as Record<string, unknown>;
    for (const k of ['id', 'queue', 'reason', 'task', 'taskId', 'argsRepr', 'kwargsRepr', 'properties', 'headers', 'body']) assert.ok(k in one, k);

    ok(await p.sh('asynx dead requeue 1'), 'dead requeue 1');
    const after1 = JSON.parse((await p.setup('asynx dead list --json')).stdout) as { id: string }[];
    assert.deepEqual(after1.map((r) => r.id), ['2']);
    ok(await p.sh('asynx dead requeue --all -Q celery'), 'dead requeue --all');
    const afterAll = JSON.parse((await p.setup('asynx dead list --json')).stdout) as unknown[];
    assert.equal(afterAll.length, 0);
    ok(await p.sh('asynx dead purge --yes'), 'dead purge --yes');

    const purge = await p.sh('asynx purge -Q emails,celery');
    ok(purge, 'purge');
    assert.match(purge.stdout, /Purged 3 messages/, 'the emails.send call and the two requeued messages');
  });

  it('asynx worker -n w1@%h -Q emails,celery -l debug -f …: ready in its log file, TERM exits 0', async () => {
    const worker = p.background('asynx worker -A ./tasks.mjs -n w1@%h -Q emails,celery -l debug -f ./.asynx/log/%n%I.log');
    const log = join(p.dir, '.asynx', 'log', 'w1.log');
    const text = () => (existsSync(log) ? readFileSync(log, 'utf8') : '');
    await waitFor('w1 ready in its log file', () => worker.isDone() || / ready\.$/m.test(text()), 30_000);
    assert.ok(!worker.isDone(), `worker exited during start:\n${worker.output()}\n${text()}`);
    assert.match(text(), /queues: emails, ?celery|queues: celery, ?emails/);
    worker.remember();
    assert.equal(await worker.stop('SIGTERM', 30_000), 0, text());
  });

  it('asynx worker --detach --pidfile … exits 0 and leaves a live node with a pidfile', async () => {
    const before = new Set(p.nodePids().values());
    ok(await p.sh('asynx worker -A ./tasks.mjs --detach --pidfile ./.asynx/run/%n.pid --logfile ./.asynx/log/%n%I.log'), 'worker --detach');
    const pid = await waitFor('the detached node in its pidfile', () => [...p.nodePids().values()].find((x) => !before.has(x)), 30_000);
    process.kill(pid, 'SIGTERM');
    assert.ok(await waitGone([pid], 30_000), 'the detached worker ends on TERM');
  });

  it('asynx --help; asynx <command> --help, and asynx help multi', async () => {
    // <command>: every command `asynx --help` lists (but help itself).
    const top = (await p.setup('asynx --help')).stdout;
    const commands = [...top.matchAll(/^ {2}([a-z]+) /gm)].map((m) => m[1]!).filter((c) => c !== 'help');
    for (const c of ['worker', 'call', 'result', 'purge', 'dead', 'multi', 'init']) assert.ok(commands.includes(c), `${c} in: ${commands.join(' ')}`);
    for (const command of commands) {
      const r = await p.sh('asynx --help; asynx <command> --help', { '<command>': command });
      ok(r, `help ${command}`);
      assert.equal((r.stdout.match(/Examples:/g) ?? []).length, 2, `asynx --help and asynx ${command} --help both show examples:\n${r.stdout}`);
    }
    const viaHelp = await p.sh('asynx help multi');
    ok(viaHelp, 'help multi');
    const direct = await p.sh('asynx multi help');
    ok(direct, 'multi help');
    assert.match(direct.stdout, /Usage: asynx multi start/);
    assert.equal(viaHelp.stdout, direct.stdout);
    ok(await p.setup('asynx help init'), 'help init');
  });
});

describe('README sh examples: the pools (embedded SQLite)', () => {
  const p = exampleProject(lineText);
  after(() => p.cleanup());

  const lines: Array<[string, RegExp]> = [
    ['asynx worker -A ./tasks.mjs -P async -c 200', /concurrency: 200 \(async\)$/m],
    ['asynx worker -A ./tasks.mjs -P threads -c 4', /concurrency: 4 \(threads\)$/m],
    ['asynx worker -A ./tasks.mjs --autoscale=8,2', /concurrency: \{min=2, max=8\} \(prefork\)$/m],
    ['asynx worker -A ./tasks.mjs -P solo', /concurrency: 1 \(solo\)$/m],
  ];
  for (const [command, online] of lines) {
    it(`${command}: ready with its pool, runs a task, TERM exits 0`, async () => {
      const worker = p.background(command);
      await waitFor('worker ready', () => worker.isDone() || / ready\.$/m.test(worker.output()), 30_000);
      assert.ok(!worker.isDone(), `worker exited during start:\n${worker.output()}`);
      assert.match(worker.output(), online);
      const five = await p.setup("asynx call tasks.add --args '[2, 3]' --wait --timeout 20");
      ok(five, 'call --wait');
      assert.equal(five.stdout.trim(), '5');
      assert.equal(await worker.stop('SIGTERM', 30_000), 0, `warm shutdown exits 0:\n${worker.output()}`);
    });
  }
});

describe('README sh examples: asynx multi and asynx init (embedded SQLite)', () => {
  const p = exampleProject(lineText);
  after(async () => {
    await p.setup('asynx multi stopwait web reports w1 w2 --kill-after=10', 30_000).catch(() => undefined);
    await p.setup('asynx multi stopwait 3 --kill-after=10', 30_000).catch(() => undefined);
    await p.cleanup();
  });
  const three = ['asynx1', 'asynx2', 'asynx3'];
  const pidsOf = (names: string[]) => names.map((n) => p.nodePids().get(n) ?? 0);

  it('start, status, show/names/expand/get, restart, stopwait, stop -INT, kill', async () => {
    const start = await p.sh('asynx multi start 3 -A ./tasks.mjs -c 4');
    ok(start, 'multi start 3');
    for (const n of three) assert.match(start.stdout, new RegExp(`${n}.*OK`), start.stdout);
    const first = pidsOf(three);
    assert.ok(first.every((x) => x > 0), `three live pidfiles: ${first.join(',')}`);
    await waitFor('4 pool processes each', () => first.every((pid) => childPidsOf(pid).length === 4), 30_000);

    ok(await p.sh('asynx multi start web reports -A ./tasks.mjs -c 2 -c:reports 1 -Q:reports reports'), 'multi start web reports');
    const [web, reports] = pidsOf(['web', 'reports']);
    assert.ok(web! > 0 && reports! > 0);
    await waitFor('-c 2 for web, -c:reports 1', () => childPidsOf(web!).length === 2 && childPidsOf(reports!).length === 1, 30_000);

    const status3 = await p.sh('asynx multi status 3');
    ok(status3, 'status 3');
    assert.match(status3.stdout, /STATE\s+PID\s+UPTIME\s+CPU%\s+RSS\s+POOL\s+ACTIVE\s+TASKS/, 'the columns the comment names');
    for (const n of three) assert.match(status3.stdout, new RegExp(`^${n}@\\S+\\s+up\\s+\\d+\\s+\\S+\\s+\\S+\\s+\\S+\\s+4\\s`, 'm'), status3.stdout);
    const statusAll = await p.sh('asynx multi status');
    ok(statusAll, 'status');
    for (const n of [...three, 'web', 'reports']) assert.match(statusAll.stdout, new RegExp(n));

    const show = await p.sh('asynx multi show 3');
    ok(show, 'show 3');
    assert.equal((show.stdout.match(/worker/g) ?? []).length >= 3, true, show.stdout);
    const names = await p.sh('asynx multi names 3');
    ok(names, 'names 3');
    for (const n of three) assert.match(names.stdout, new RegExp(`${n}@`));
    const expand = await p.sh("asynx multi expand '%n.log' 3");
    ok(expand, 'expand');
    assert.deepEqual(expand.stdout.trim().split(/\s+/), three.map((n) => `${n}.log`));
    const get = await p.sh('asynx multi get asynx1@$(hostname) 3');
    ok(get, 'get');
    assert.match(get.stdout, /asynx1@/);

    const restart = await p.sh('asynx multi restart 3 -A ./tasks.mjs -c 4', {}, 120_000);
    ok(restart, 'restart 3');
    const second = pidsOf(three);
    assert.ok(second.every((x, i) => x > 0 && x !== first[i]), `new pids after restart: ${first.join(',')} → ${second.join(',')}`);

    ok(await p.sh('asynx multi stopwait 3 --timeout=120 --kill-after=150', {}, 180_000), 'stopwait 3');
    assert.ok(await waitGone(second, 5_000), 'asynx1..3 are gone after stopwait');

    ok(await p.sh('asynx multi start 3 -A ./tasks.mjs -c 4'), 'multi start 3 (again)');
    const third = pidsOf(three);
    assert.ok(third.every((x) => x > 0));
    ok(await p.sh('asynx multi stop 3 -INT'), 'stop 3 -INT');
    ok(await p.sh('asynx multi kill 3'), 'kill 3');
    assert.ok(await waitGone(third, 30_000), 'asynx1..3 are gone after stop -INT and kill');

    const help = await p.sh('asynx multi help');
    ok(help, 'multi help');
    assert.match(help.stdout, /Usage: asynx multi/);
  });

  it('asynx multi stopwait w1 w2 (local nodes started by the test)', async () => {
    const setup = await p.setup('asynx multi start w1 w2 -A ./tasks.mjs -c 1', LINE_TIMEOUT_MS);
    ok(setup, 'setup multi start w1 w2');
    const pids = pidsOf(['w1', 'w2']);
    assert.ok(pids.every((x) => x > 0));
    ok(await p.sh('asynx multi stopwait w1 w2', {}, 120_000), 'stopwait w1 w2');
    assert.ok(await waitGone(pids, 5_000));
  });

  it('asynx init systemd writes both units', async () => {
    ok(await p.sh('asynx init systemd --nodes=w1,w2 --app=./tasks.mjs --user=deploy'), 'init systemd');
    for (const f of ['asynx@.service', 'asynx.service']) assert.ok(existsSync(join(p.dir, f)), f);
    assert.match(readFileSync(join(p.dir, 'asynx@.service'), 'utf8'), /User=deploy/);
  });
});

describe('README sh examples: monitoring (embedded SQLite)', () => {
  const p = exampleProject(lineText);
  after(() => p.cleanup());

  it('asynx worker -E; status, inspect, control, revoke, events, dashboard', async () => {
    const worker = p.background('asynx worker -A ./tasks.mjs -E');
    await waitFor('worker ready', () => worker.isDone() || / ready\.$/m.test(worker.output()), 30_000);
    assert.ok(!worker.isDone(), `worker exited during start:\n${worker.output()}`);
    await waitFor('its pool', () => childPidsOf(worker.pid).length >= 1, 30_000);
    const node = /(\S+@\S+): ready\./m.exec(worker.output())?.[1] ?? '';
    assert.ok(node, worker.output());

    const status = await p.sh('asynx status');
    ok(status, 'status');
    assert.match(status.stdout, new RegExp(`^->\\s+${node.replace(/[.]/g, '\\.')}: OK$`, 'm'));
    assert.match(status.stdout, /^1 node online\.$/m);

    const ping = await p.sh('asynx inspect ping');
    ok(ping, 'inspect ping');
    assert.match(ping.stdout, /pong/);

    const stats = await p.sh('asynx inspect stats --json');
    ok(stats, 'inspect stats --json');
    const byNode = JSON.parse(stats.stdout) as Record<string, Record<string, unknown>>;
    assert.deepEqual(Object.keys(byNode), [node]);
    for (const k of ['total', 'pool', 'rusage', 'broker', 'prefetch_count']) assert.ok(k in byNode[node]!, `stats.${k}`);

    const queues = await p.sh('asynx inspect active_queues');
    ok(queues, 'inspect active_queues');
    assert.match(queues.stdout, /'name': 'celery'/);

    const rate = await p.sh('asynx control rate_limit tasks.add 10/s');
    ok(rate, 'control rate_limit');
    assert.match(rate.stdout, /new rate limit set successfully/);
    assert.match((await p.setup('asynx inspect registered')).stdout, /tasks\.add \[rate_limit=10\/s\]/);

    const before = childPidsOf(worker.pid).length;
    const grow = await p.sh('asynx control pool_grow 2');
    ok(grow, 'control pool_grow 2');
    await waitFor('two more pool children', () => childPidsOf(worker.pid).length === before + 2, 30_000);

    const call = await p.setup("asynx call tasks.add --args '[1, 1]' --countdown 3");
    ok(call, 'setup call --countdown 3');
    const id = call.stdout.trim();
    const revoke = await p.sh('asynx revoke <id> --terminate --signal SIGKILL', { '<id>': id });
    ok(revoke, 'revoke --terminate');
    const revoked = await waitFor('the countdown task REVOKED', async () => {
      const r = JSON.parse((await p.setup(`asynx result ${id}`)).stdout) as { state: string; traceback: unknown; result: unknown };
      return r.state === 'REVOKED' ? r : null;
    }, 20_000, 250);
    assert.equal(revoked.traceback, null, 'a revoked task has no traceback (Celery stores none)');

    const dump = p.background('asynx events');
    await waitFor('a heartbeat line', () => dump.isDone() || new RegExp(`^${node.replace(/[.]/g, '\\.')} \\[[^\\]]+\\] heartbeat: `, 'm').test(dump.output()), 20_000);
    assert.ok(!dump.isDone(), dump.output());
    assert.equal(await dump.stop('SIGTERM', 10_000), 0, dump.output());

    const replay = await p.sh('asynx events --json --replay --count 10');
    ok(replay, 'events --json --replay --count 10');
    const lines = replay.stdout.trim().split('\n').map((l) => JSON.parse(l) as { type: string; hostname: string });
    assert.equal(lines.length, 10);
    assert.ok(lines.some((e) => e.type === 'worker-online' && e.hostname === node), replay.stdout);

    const dash = p.background('asynx dashboard');
    const url = await waitFor('the dashboard URL', () => (dash.isDone() ? 'exited' : /http:\/\/127\.0\.0\.1:5555\//.exec(dash.output())?.[0]), 20_000);
    assert.notEqual(url, 'exited', dash.output());
    const page = await fetch(url);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<html/i);
    await waitFor('the node in the dashboard state', async () => JSON.stringify(await (await fetch(`${url}api/snapshot`)).json()).includes(node), 20_000, 250);
    assert.equal(await dash.stop('SIGTERM', 10_000), 0, dash.output());

    worker.remember();
    assert.equal(await worker.stop('SIGTERM', 30_000), 0, worker.output());
    const none = await p.setup('asynx status');
    assert.equal(none.code, 1, `no node online → exit 1:\n${none.stdout}${none.stderr}`);
  });
});

describe('README sh examples: periodic tasks (embedded SQLite)', () => {
  const p = exampleProject(lineText);
  after(() => p.cleanup());

  it('asynx beat --list; asynx worker -B with asynx beat: one sends each due time, the worker runs it', async () => {
    const list = await p.sh('asynx beat -A ./tasks.mjs --list');
    ok(list, 'beat --list');
    assert.match(list.stdout, /^add-every-10s\s+tasks\.add\s+every 10s\s+\d{4}-\d\d-\d\d \d\d:\d\d:[0-5]0 GMT\+00:00\s+latest$/m);
    assert.match(list.stdout, /^nightly-report\s+emails\.send\s+cron 30 2 \* \* \* \(Europe\/Berlin\)\s+\d{4}-\d\d-\d\d (02:30|03:00):00 GMT\+0[12]:00\s+none$/m);

    const worker = p.background('asynx worker -A ./tasks.mjs -B');
    await waitFor('worker ready', () => worker.isDone() || (/ ready\.$/m.test(worker.output()) && /beat: 2 entries/.test(worker.output())), 30_000);
    assert.ok(!worker.isDone(), worker.output());
    const beat = p.background('asynx beat -A ./tasks.mjs');
    await waitFor('beat ready', () => beat.isDone() || / ready\.$/m.test(beat.output()), 30_000);
    assert.ok(!beat.isDone(), beat.output());
    const sentBy = () => [worker, beat].filter((x) => /beat: sent add-every-10s/.test(x.output()));
    await waitFor('a send of add-every-10s', () => sentBy().length > 0, 30_000);
    const id = /beat: sent add-every-10s \(tasks\.add\[([0-9a-f-]+)\]\)/.exec(sentBy()[0]!.output())![1]!;
    await waitFor('the worker ran it', () => new RegExp(`Task tasks\\.add\\[${id}\\] succeeded`).test(worker.output()), 30_000);
    assert.equal(sentBy().length, 1, 'only the leader sends');
    assert.equal(await beat.stop('SIGTERM', 30_000), 0, beat.output());
    assert.equal(await worker.stop('SIGTERM', 30_000), 0, worker.output());
  });
});

describe('README sh examples: every RUN line ran', () => {
  it('no RUN entry was left out of the runs above', () => {
    assert.deepEqual(Object.keys(RUN).filter((c) => !ran.has(c)), []);
  });
});
