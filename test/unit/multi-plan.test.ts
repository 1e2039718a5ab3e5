// The typed node plan (issue 8 structure 3), `--` passthrough kept (defect 2), one duration rule in multi and its API.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { runMultiCli } from '../../src/cli/multi.js';
import { UsageError } from '../../src/errors.js';
import { multiArgv, planFromOptions, type MultiOptions } from '../../src/multi/index.js';
import { nodeCommand, planMulti } from '../../src/multi/nodes.js';
import { resolveSupervisorOptions } from '../../src/multi/supervisor.js';

const H = '--hostname=vm';

async function cli(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const sink = (append: (s: string) => void): Writable => new Writable({ write(chunk, _e, cb) { append(String(chunk)); cb(); } });
  const code = await runMultiCli(argv, { stdout: sink((s) => (stdout += s)), stderr: sink((s) => (stderr += s)), env: {}, isTTY: false, cwd: '/nonexistent-asynx-test' });
  return { code, stdout, stderr };
}

test('show keeps `--` and what follows, after the options (as celery multi does)', async () => {
  const r = await cli(['show', '2', '-c', '3', H, '--', 'broker.pool_limit=10']);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 2);
  for (const [k, line] of lines.entries()) {
    assert.match(line, new RegExp(` worker --detach -c 3 -n asynx${k + 1}@vm --pidfile=\\S+ --logfile=\\S+ -- broker\\.pool_limit=10$`));
  }
  // `--append` words stay worker options: before the `--`
  const a = await cli(['get', 'w1@vm', 'w1', H, '--append=--max-tasks-per-child=5', '--', 'prefetchMultiplier=2']);
  assert.match(a.stdout, / --max-tasks-per-child=5 -- prefetchMultiplier=2\n$/);
  // no `--` at all without a passthrough
  assert.ok(!nodeCommand(planMulti(['w1', H], '/p').nodes[0]!).includes('--'));
});

test('the plan is typed per node: name, paths, concurrency, queues, loglevel, options, passthrough', () => {
  const plan = planMulti(['a', 'b', '-c', '2', '-c:b', '8', '-Q', 'q.%n', '--loglevel:a=DEBUG', '--max-tasks-per-child=9', H, '--', 'x=1'], '/proj');
  const [a, b] = plan.nodes;
  assert.deepEqual([a!.name.full, a!.concurrency, a!.queues, a!.loglevel, a!.pidfile, a!.logfile], ['a@vm', '2', 'q.a', 'DEBUG', '/proj/.asynx/run/a.pid', '/proj/.asynx/log/a.log']);
  assert.deepEqual([b!.concurrency, b!.queues, b!.loglevel], ['8', 'q.b', null]);
  assert.deepEqual(b!.passthrough, ['x=1']);
  assert.ok(b!.options.some((o) => o.key === '--max-tasks-per-child' && o.value === '9'));
  assert.equal(nodeCommand(b!).at(-2), '--');
});

test('the API builds the same plan as the CLI from its typed options, without an argv round trip', () => {
  const opts: MultiOptions = { app: './t.mjs', concurrency: { w1: 4 }, queues: ['a', 'b'], pidfile: '/r/%n.pid', hostname: 'vm', timeout: 5, killAfter: '2s', signal: 'SIGINT', rolling: false, extraArgs: ['-l', 'DEBUG'], passthrough: ['prefetchMultiplier=2'], cwd: '/p' };
  const fromApi = planFromOptions(['w1', 'w2'], opts);
  const fromCli = planMulti(multiArgv(['w1', 'w2'], opts), '/p');
  assert.deepEqual(fromApi.nodes.map(nodeCommand), fromCli.nodes.map(nodeCommand));
  assert.deepEqual(fromApi.nodes.map((n) => n.concurrency), ['4', null]);
  assert.deepEqual([fromApi.signal, fromApi.settings.allAtOnce, fromApi.settings.timeout], ['SIGINT', true, 5]);
  // the API's numbers are seconds as they are: not turned into strings and parsed back
  assert.equal(typeof fromApi.settings.timeout, 'number');
});

test('durations: bare numbers are seconds, units accepted; malformed values name the option (CLI and API)', async () => {
  const cliOpts = resolveSupervisorOptions(planMulti(['1', '--timeout=2m', '--kill-after=90', '--start-timeout=500ms'], '/p'), {});
  assert.deepEqual([cliOpts.timeoutMs, cliOpts.killAfterMs, cliOpts.startTimeoutMs], [120_000, 90_000, 500]);
  const api = (o: MultiOptions) => resolveSupervisorOptions(planFromOptions(1, { cwd: '/p', ...o }), {}, { startTimeout: 'startTimeout', timeout: 'timeout', killAfter: 'killAfter' });
  assert.deepEqual([api({ timeout: 120 }).timeoutMs, api({ killAfter: '1.5s' }).killAfterMs, api({ startTimeout: 2 }).startTimeoutMs], [120_000, 1500, 2000]);
  const names = (option: string) => (err: unknown): boolean => err instanceof UsageError && err.exitCode === 64 && err.message.includes(option);
  assert.throws(() => api({ timeout: 'soon' }), names('Option timeout:'));
  assert.throws(() => api({ killAfter: -1 }), names('Option killAfter:'));
  for (const [flag, argv] of [['--timeout', '--timeout=2x'], ['--kill-after', '--kill-after=abc'], ['--start-timeout', '--start-timeout=5 s s']] as const) {
    const r = await cli(['stopwait', '1', H, argv]);
    assert.equal(r.code, 64, argv);
    assert.match(r.stderr, new RegExp(`Option ${flag}: `), argv);
  }
});
