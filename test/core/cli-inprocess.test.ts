// The CLI in-process: main(argv, io) with captured streams, never process.exit; help, usage errors, suggestions.

import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { Command } from 'commander';
import { addConnectionOptions, connectionFromFlags } from '../../src/cli/connection-options.js';
import { main } from '../../src/cli/main.js';
import { failureLine, formatCliError, painter } from '../../src/cli/output.js';
import { closest, editDistance } from '../../src/cli/suggest.js';
import { AsynxError, ExitCode } from '../../src/errors.js';
import { tempDir } from '../helpers/tmp.js';
import { ROOT } from '../helpers/worker.js';

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer | string, _enc: BufferEncoding, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

/** Runs main() with fresh captured streams and a colourless env. */
async function cli(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new Capture();
  const stderr = new Capture();
  const code = await main(argv, { stdout, stderr, env: { ...process.env, NO_COLOR: '1' }, cwd: ROOT, isTTY: false });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

const lines = (s: string) => s.split('\n').filter((l) => l !== '');

describe('asynx CLI in-process', () => {
  const realExit = process.exit;
  before(() => {
    // main() must never end the process; a call here fails the test instead of killing the runner.
    process.exit = ((code?: number) => {
      throw new Error(`main() called process.exit(${code})`);
    }) as typeof process.exit;
  });
  after(() => {
    process.exit = realExit;
  });

  it('--version prints the package version on the given stdout', async () => {
    const r = await cli('--version');
    assert.equal(r.code, ExitCode.ok);
    assert.equal(r.stdout.trim(), pkg.version);
    assert.equal(r.stderr, '');
  });

  it('--help prints the top-level help with the exit codes the README lists', async () => {
    const r = await cli('--help');
    assert.equal(r.code, ExitCode.ok);
    assert.match(r.stdout, /^Usage: asynx \[options\] \[command\]/);
    assert.match(r.stdout, /64 usage error \(bad flag or value, unknown command, no such -A module\)/);
    assert.match(r.stdout, /70 the app module failed to load \(it throws or does not parse\)/);
    assert.match(r.stdout, /73 a live pidfile/);
    assert.equal(r.stderr, '');
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    assert.match(readme, /`64` usage\s+error \([^)]*an `-A` module that\s+does not exist\)/);
    assert.match(readme, /`70` the app module failed to load \(it exists but throws on\s+import or has a syntax error/);
  });

  it('an unknown command is one line naming it and the closest command, exit 64', async () => {
    const typo = await cli('wroker', '-A', 'x');
    assert.equal(typo.code, ExitCode.usage);
    assert.deepEqual(lines(typo.stderr), [`asynx: unknown command 'wroker' (did you mean 'worker'?)`]);
    assert.equal(typo.stdout, '', 'no help text');
    const multi = await cli('mutli', 'start', '3');
    assert.deepEqual(lines(multi.stderr), [`asynx: unknown command 'mutli' (did you mean 'multi'?)`]);
    const far = await cli('frobnicate');
    assert.equal(far.code, ExitCode.usage);
    assert.deepEqual(lines(far.stderr), [`asynx: unknown command 'frobnicate' (run asynx --help for the list of commands)`]);
    assert.doesNotMatch(far.stderr, /did you mean/);
    const viaHelp = await cli('help', 'frobnicate');
    assert.equal(viaHelp.code, ExitCode.usage);
    assert.deepEqual(lines(viaHelp.stderr), [`asynx: unknown command 'frobnicate' (run asynx --help for the list of commands)`]);
  });

  it('an unknown option is one line pointing at that command\'s --help, exit 64', async () => {
    const r = await cli('worker', '-A', 'x', '--bogus');
    assert.equal(r.code, ExitCode.usage);
    assert.deepEqual(lines(r.stderr), [`asynx: unknown option '--bogus' (run asynx worker --help for usage)`]);
    const near = await cli('call', 't.add', '--kwarg', '{}');
    assert.deepEqual(lines(near.stderr), [`asynx: unknown option '--kwarg' (did you mean '--kwargs'?) (run asynx call --help for usage)`]);
    const top = await cli('--bogus');
    assert.deepEqual(lines(top.stderr), [`asynx: unknown option '--bogus' (run asynx --help for usage)`]);
    const missing = await cli('result');
    assert.equal(missing.code, ExitCode.usage);
    assert.deepEqual(lines(missing.stderr), [`asynx: missing required argument 'id' (run asynx result --help for usage)`]);
  });

  it('asynx help <command> prints that command\'s help, multi and init included', async () => {
    const call = await cli('help', 'call');
    assert.equal(call.code, ExitCode.ok);
    assert.match(call.stdout, /^Usage: asynx call \[options\] <task>/);
    const multi = await cli('help', 'multi');
    assert.equal(multi.code, ExitCode.ok);
    assert.doesNotMatch(multi.stdout, /Usage: asynx \[options\] \[command\]/, 'not the top-level help');
    assert.equal(multi.stdout, (await cli('multi', 'help')).stdout);
    const init = await cli('help', 'init');
    assert.equal(init.code, ExitCode.ok);
    assert.match(init.stdout, /^Usage: asynx init /);
    assert.equal(init.stdout, (await cli('init', '--help')).stdout);
  });

  it('usage errors exit 64 and name the flag: bad JSON, --eta that is not a time, --priority out of range', async () => {
    const json = await cli('call', 't.add', '--args', '[1,');
    assert.equal(json.code, ExitCode.usage);
    assert.match(json.stderr, /^asynx: --args must be JSON \(/);
    const eta = await cli('call', 't.add', '--eta', 'tomorrow');
    assert.equal(eta.code, ExitCode.usage, 'was 65 (a protocol error) before');
    assert.deepEqual(lines(eta.stderr), [`asynx: --eta must be an ISO-8601 time such as 2026-12-01T12:00:00Z, got 'tomorrow'`]);
    const prio = await cli('call', 't.add', '--priority', '300');
    assert.equal(prio.code, ExitCode.usage);
    assert.match(prio.stderr, /--priority must be a whole number 0\.\.255, got '300'/);
    const noApp = await cli('call', 't.add', '-A', './no/such/module.mjs');
    assert.equal(noApp.code, ExitCode.usage, 'a module that does not exist is a usage error');
    assert.match(noApp.stderr, /^asynx: Cannot find the app module/);
  });

  it('every control command takes -b, --result-backend and --config, declared in one place', async () => {
    for (const cmd of ['call', 'result', 'purge']) {
      const help = (await cli(cmd, '--help')).stdout;
      for (const flag of ['-b, --broker <url>', '--result-backend <url>', '--config <path>']) assert.ok(help.includes(flag), `${cmd}: ${flag}`);
    }
    const parsed = addConnectionOptions(new Command('x').exitOverride()).parse(['-b', 'sqlite://./a.db', '--result-backend', 'none', '--config', 'conf/asynx.json'], { from: 'user' }).opts();
    const conn = connectionFromFlags(parsed, '/srv/app');
    assert.deepEqual(conn.overrides, { brokerUrl: 'sqlite://./a.db', resultBackend: 'none' });
    assert.equal(conn.configFile, '/srv/app/conf/asynx.json');
    assert.deepEqual(conn.childEnv, { ASYNX_BROKER_URL: 'sqlite://./a.db', ASYNX_RESULT_BACKEND: 'none', ASYNX_CONFIG: '/srv/app/conf/asynx.json' });
    assert.deepEqual(connectionFromFlags({}, '/srv/app'), { overrides: {}, configFile: null, childEnv: {} });
  });

  it('-b and --config reach the app of a control command (purge against a fresh SQLite file)', async () => {
    const tmp = tempDir();
    const saved = process.env.ASYNX_CONFIG;
    try {
      const viaFlag = join(tmp.dir, 'flag.db');
      const r = await cli('purge', '-b', `sqlite://${viaFlag}`);
      assert.equal(r.code, ExitCode.ok, r.stderr);
      assert.equal(r.stdout, 'Purged 0 messages from celery.\n');
      assert.ok(existsSync(viaFlag), '-b chose the broker');
      const viaConfig = join(tmp.dir, 'config.db');
      writeFileSync(join(tmp.dir, 'asynx.json'), JSON.stringify({ brokerUrl: `sqlite://${viaConfig}`, defaultQueue: 'from-config' }));
      const c = await cli('purge', '--config', join(tmp.dir, 'asynx.json'));
      assert.equal(c.code, ExitCode.ok, c.stderr);
      assert.equal(c.stdout, 'Purged 0 messages from from-config.\n');
      assert.ok(existsSync(viaConfig), '--config chose the broker');
    } finally {
      if (saved === undefined) delete process.env.ASYNX_CONFIG;
      else process.env.ASYNX_CONFIG = saved;
      tmp.cleanup();
    }
  });

  it('errors print as one `asynx: <message>`, never `Error: Error:`', () => {
    const plain = painter(new Capture(), { NO_COLOR: '1' });
    assert.equal(formatCliError(new AsynxError('asynx.test.sample', 'the thing failed: do this next'), plain, {}), 'asynx: the thing failed: do this next\n');
    const bug = formatCliError(new Error('Error: boom'), plain, {});
    assert.match(bug, /^asynx: internal error \(please report it with this trace\): Error: boom\n {4}at /);
    assert.doesNotMatch(bug, /Error: Error:/);
    assert.equal(failureLine(Object.assign(new Error('Error: kaput'), { name: 'TypeError' })), 'TypeError: kaput');
    assert.equal(failureLine('just text'), 'Error: just text');
  });

  it('suggestions: close words only', () => {
    assert.equal(editDistance('wroker', 'worker'), 1);
    assert.equal(closest('wroker', ['worker', 'call']), 'worker');
    assert.equal(closest('cal', ['worker', 'call']), 'call');
    assert.equal(closest('res', ['result', 'purge']), 'result', 'a unique prefix');
    assert.equal(closest('frob', ['worker', 'call', 'result', 'purge', 'multi', 'init', 'help']), null);
    assert.equal(closest('--concurency', ['--concurrency', '--queues']), '--concurrency');
  });
});
