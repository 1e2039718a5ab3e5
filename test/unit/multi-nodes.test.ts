// The multi grammar (spec §4–§6): node names, per-node options, placeholders, passthrough, signals, usage errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseArgs, parseSignalToken } from '../../src/multi/args.js';
import { formatCommand, nodeCommand, planMulti, splitCommand, type MultiNode } from '../../src/multi/nodes.js';
import { multiArgv } from '../../src/multi/index.js';
import { resolveSupervisorOptions } from '../../src/multi/supervisor.js';
import { UsageError } from '../../src/errors.js';

const H = '--hostname=vm.example.com';
const names = (argv: string[]): string[] => planMulti([...argv, H], '/proj').nodes.map((n) => n.name.full);
/** A node's worker args after `worker --detach`, as one string. */
const args = (n: MultiNode | undefined): string => formatCommand(nodeCommand(n!).slice(4));
const isUsage = (re: RegExp) => (err: unknown): boolean => err instanceof UsageError && err.exitCode === 64 && re.test(err.message);

test('range mode, range prefix, named mode, prefix, suffix, full names', () => {
  assert.deepEqual(names(['3']), ['asynx1@vm.example.com', 'asynx2@vm.example.com', 'asynx3@vm.example.com']);
  assert.throws(() => names(['0']), (e: Error & { code?: string }) => e.code === 'asynx.multi.noNodes'); // was [] (issue 9 item 10: a usage error)
  assert.deepEqual(names(['2', '--range-prefix=w']), ['w1@vm.example.com', 'w2@vm.example.com']);
  assert.deepEqual(names(['2', '3']), ['2@vm.example.com', '3@vm.example.com']);
  assert.deepEqual(names(['a', 'b', '--prefix=x-']), ['x-a@vm.example.com', 'x-b@vm.example.com']);
  assert.deepEqual(names(['2', '--prefix=x-']), ['asynx1@vm.example.com', 'asynx2@vm.example.com']);
  assert.deepEqual(names(['a', 'img@other', 'c@%h']), ['a@vm.example.com', 'img@other', 'c@vm.example.com']);
  assert.deepEqual(names(['a', '--suffix=box']), ['a@box']);
  assert.deepEqual(names(['a', '--suffix=""']), ['a@']);
  // -n is the short form of --hostname; --hostname wins
  assert.deepEqual(planMulti(['a', '-n', 'h1'], '/p').nodes.map((n) => n.name.full), ['a@h1']);
  assert.deepEqual(planMulti(['a', '-n', 'h1', '--hostname=h2'], '/p').nodes.map((n) => n.name.full), ['a@h2']);
});

test('per-node options: index, range, list, names; in place; last wins; literal keys', () => {
  const plan = planMulti(['4', '-c', '3', '-c:1-3', '10', '-Q:2,4', 'x', '--loglevel:asynx4@vm.example.com=DEBUG', H], '/proj');
  assert.deepEqual(plan.nodes.map((n) => n.options.find((o) => o.key === '-c')?.value), ['10', '10', '10', '3']);
  assert.deepEqual(plan.nodes.map((n) => n.options.find((o) => o.key === '-Q')?.value ?? null), [null, 'x', null, 'x']);
  assert.equal(plan.nodes[3]!.options.find((o) => o.key === '--loglevel')?.value, 'DEBUG');
  // named mode: names, short names, single indexes, and (unlike Celery) index ranges
  const named = planMulti(['image', 'video', 'data', '-c', '2', '-c:image', '10', '-c:3', '5', '-Q:2-3', 'q', H], '/p');
  assert.deepEqual(named.nodes.map((n) => n.options.find((o) => o.key === '-c')?.value), ['10', '2', '5']);
  assert.deepEqual(named.nodes.map((n) => n.options.find((o) => o.key === '-Q')?.value ?? null), [null, 'q', 'q']);
  // a name that matches no node is a usage error (Celery ignores it silently: issue 9, item 10)
  assert.throws(() => planMulti(['a', '-c:zzz', '4', H], '/p'), (e: Error & { code?: string }) => e.code === 'asynx.multi.unknownNode' && /':zzz' names no node .*nodes: a/.test(e.message));
  assert.throws(() => planMulti(['3', '-c:w5', '3', H], '/p'), (e: Error & { code?: string }) => e.code === 'asynx.multi.unknownNode');
  assert.throws(() => planMulti(['0', H], '/p'), (e: Error & { code?: string }) => e.code === 'asynx.multi.noNodes');
  // order: user options first-seen (per-node in place), then -n, then the defaults not given
  const shown = planMulti(['3', '-c', '4', '-c:2', '8', '--pidfile=/tmp/x/%n.pid', H], '/p');
  assert.equal(args(shown.nodes[1]), '-c 8 --pidfile=/tmp/x/asynx2.pid -n asynx2@vm.example.com --logfile=./.asynx/log/asynx2%I.log');
  // -l and --loglevel are different keys; repeated -Q keeps the last
  const b = planMulti(['a', 'b', '-l', 'INFO', '--loglevel:b=DEBUG', '-Q', 'q1', '-Q', 'q2', H], '/p').nodes[1];
  assert.equal(args(b), '-l INFO -Q q2 --loglevel=DEBUG -n b@vm.example.com --pidfile=./.asynx/run/b.pid --logfile=./.asynx/log/b%I.log');
});

test('bad per-node indexes are usage errors', () => {
  assert.throws(() => planMulti(['3', '-c:0', '4'], '/p'), isUsage(/Indexes start at 1 got: '0'/));
  assert.throws(() => planMulti(['3', '-c:5', '4'], '/p'), isUsage(/No node at index '5'/));
  assert.throws(() => planMulti(['3', '-c:2-7', '4'], '/p'), isUsage(/No node at index '7'/));
});

test('a long option with a space-separated value is a usage error with a hint', () => {
  assert.throws(() => parseArgs(['3', '--workdir', '/srv/app']), isUsage(/did you mean --workdir=\/srv\/app\?/));
  assert.throws(() => parseArgs(['3', '--loglevel:2', 'DEBUG']), isUsage(/--loglevel:2=DEBUG/));
  // a bare long flag before another option or at the end is fine
  assert.deepEqual(parseArgs(['3', '--foo', '-c', '2', '--bar']).options.map((o) => o.key), ['--foo', '-c', '--bar']);
});

test('short options take the next token unless it starts with -', () => {
  const p = parseArgs(['-E', 'a', 'b', '-x', '-c', '2']);
  assert.deepEqual(p.positionals, ['b']);
  assert.deepEqual(p.options.map((o) => [o.key, o.value]), [['-E', 'a'], ['-x', null], ['-c', '2']]);
});

test('placeholders in option values: multi column; %i/%I/%% kept for the worker in pidfile/logfile', () => {
  const n = planMulti(['2', '--logfile=/var/log/%n-100%%%I.log', '--pidfile=/run/%h.pid', '-Q', 'q.%n', '--append=--x=%d', H], '/p').nodes[0]!;
  assert.equal(n.logfileArg, '/var/log/asynx1-100%%%I.log');
  assert.equal(n.logfile, '/var/log/asynx1-100%.log');
  assert.equal(n.pidfile, '/run/asynx1@vm.example.com.pid');
  assert.equal(n.options.find((o) => o.key === '-Q')?.value, 'q.asynx1');
  assert.equal(nodeCommand(n).at(-1), '--x=vm.example.com');
  assert.throws(() => planMulti(['2', '-Q', 'q%x'], '/p'), isUsage(/%x/));
  // defaults are project-local and resolved against cwd
  const d = planMulti(['w1', H], '/proj').nodes[0]!;
  assert.equal(d.pidfile, '/proj/.asynx/run/w1.pid');
  assert.equal(d.logfile, '/proj/.asynx/log/w1.log');
  assert.equal(d.statusFile, '/proj/.asynx/run/w1.pid.status.json');
  // -f is the short logfile option: no default --logfile is added
  const f = planMulti(['w1', '-f', 'x/%n.log', H], '/proj').nodes[0]!;
  assert.equal(f.logfile, '/proj/x/w1.log');
  assert.equal(f.options.filter((o) => o.key === '--logfile').length, 0);
});

test('passthrough after -- is verbatim; executable and cmd', () => {
  const n = planMulti(['w1', '-c', '2', H, '--executable=/opt/node', '--', '--max-tasks-per-child=5', '%n'], '/p').nodes[0]!;
  const command = nodeCommand(n);
  assert.equal(command[0], '/opt/node');
  assert.match(command[1]!, /bin\/asynx$/);
  assert.deepEqual(command.slice(2, 4), ['worker', '--detach']);
  assert.deepEqual(command.slice(-2), ['--max-tasks-per-child=5', '%n']);
  // issue 8 defect 2: the `--` itself is kept, as celery multi keeps it
  assert.deepEqual(command.slice(-3), ['--', '--max-tasks-per-child=5', '%n']);
  assert.deepEqual(n.passthrough, ['--max-tasks-per-child=5', '%n']);
  const c = planMulti(['w1', `--cmd=/x/asynx worker --detach --tag="a b"`, H], '/p').nodes[0]!;
  assert.deepEqual(nodeCommand(c).slice(1, 5), ['/x/asynx', 'worker', '--detach', '--tag=a b']);
  assert.deepEqual(splitCommand(`a 'b c' "d"e`), ['a', 'b c', 'de']);
  assert.equal(formatCommand(['a', 'b c', "it's"]), `a 'b c' 'it'\\''s'`);
});

test('signals: -INT -SIGINT -KILL -9 -15; multi settings are consumed, not forwarded', () => {
  assert.equal(parseSignalToken('-INT'), 'SIGINT');
  assert.equal(parseSignalToken('-SIGQUIT'), 'SIGQUIT');
  assert.equal(parseSignalToken('-9'), 'SIGKILL');
  assert.equal(parseSignalToken('-15'), 'SIGTERM');
  assert.equal(parseSignalToken('-USR1'), 'SIGUSR1');
  assert.equal(parseSignalToken('-A'), null);
  assert.equal(parseSignalToken('-int'), null);
  const p = parseArgs(['3', '-HUP', '--timeout=5', '--kill-after=9', '-q', '--no-color', '--verbose', '--json', '--start-timeout=2s', '--all-at-once']);
  assert.equal(p.signal, 'SIGHUP');
  assert.deepEqual(p.options, []);
  assert.equal(p.settings.timeout, '5');
  assert.equal(p.settings.killAfter, '9');
  assert.equal(p.settings.startTimeout, '2s');
  assert.ok(p.settings.quiet && p.settings.noColor && p.settings.verbose && p.settings.json && p.settings.allAtOnce);
  assert.throws(() => parseArgs(['3', '--timeout']), isUsage(/--timeout=<value>/));
  // multi adds --detach itself; a user's --detach is dropped, and is no reason to hide the banner
  const d = parseArgs(['3', '--detach', '-c', '2']);
  assert.deepEqual([d.options.map((o) => o.key), d.settings.nosplash], [['-c'], false]);
});

test('the programmatic API builds the same argv as the CLI', () => {
  assert.deepEqual(multiArgv(['w1', 'w2'], { app: './t.mjs', concurrency: { w1: 4 }, queues: ['a', 'b'], pidfile: '/r/%n.pid', timeout: 5, signal: 'SIGINT', rolling: false, extraArgs: ['-l', 'DEBUG'], passthrough: ['--x'] }),
    ['w1', 'w2', '--app=./t.mjs', '--concurrency:w1=4', '--queues=a,b', '--pidfile=/r/%n.pid', '--timeout=5', '-INT', '--all-at-once', '-l', 'DEBUG', '--', '--x']);
  assert.deepEqual(multiArgv(3, { concurrency: 2 }), ['3', '--concurrency=2']);
});

test('durations: seconds or units', () => {
  const o = resolveSupervisorOptions(planMulti(['1', '--timeout=2m', '--kill-after=90', '--start-timeout=1500ms', '-QUIT'], '/p'), {});
  assert.deepEqual([o.timeoutMs, o.killAfterMs, o.startTimeoutMs, o.signal, o.rolling], [120_000, 90_000, 1500, 'SIGQUIT', true]);
  assert.equal(resolveSupervisorOptions(planMulti(['1'], '/p'), {}).startTimeoutMs, 30_000);
  assert.throws(() => resolveSupervisorOptions(planMulti(['1', '--timeout=soon'], '/p'), {}), isUsage(/soon/));
});
