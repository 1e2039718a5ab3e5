// The CLI through real processes: help, usage errors, exit codes, call / result / purge.

import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { join } from 'node:path';
import { readFileSync, writeFileSync } from 'node:fs';
import { runCli, startWorker, FIXTURE_APP, ROOT } from '../helpers/worker.js';
import { tempDir } from '../helpers/tmp.js';

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };

describe('asynx CLI', () => {
  const tmp = tempDir();
  const brokerUrl = `sqlite://${join(tmp.dir, 'c.db')}`;
  after(() => tmp.cleanup());

  it('--version and --help (with examples and exit codes on every command)', async () => {
    assert.equal((await runCli(['--version'])).stdout.trim(), pkg.version);
    for (const cmd of [[], ['worker'], ['call'], ['result'], ['purge']]) {
      const r = await runCli([...cmd, '--help']);
      assert.equal(r.code, 0, cmd.join(' '));
      assert.match(r.stdout, /Examples:/, cmd.join(' '));
      // Each help lists its exit codes (this once read /Exit codes|exit codes|Examples/, which `Examples:` always satisfied).
      assert.match(r.stdout, /Exit codes: 0 /, cmd.join(' '));
    }
    const top = await runCli(['--help']);
    assert.match(top.stdout, /64 usage error/);
  });

  it('usage errors exit 64 with a message naming the problem', async () => {
    const unknown = await runCli(['worker', '-A', FIXTURE_APP, '--bogus']);
    assert.equal(unknown.code, 64);
    assert.match(unknown.stderr, /unknown option '--bogus'/);
    const badC = await runCli(['worker', '-A', FIXTURE_APP, '-c', 'zero'], { ASYNX_BROKER_URL: brokerUrl });
    assert.equal(badC.code, 64);
    assert.match(badC.stderr, /--concurrency must be a whole number/);
    const badJson = await runCli(['call', 't.add', '--args', '[1,'], { ASYNX_BROKER_URL: brokerUrl });
    assert.equal(badJson.code, 64);
    assert.match(badJson.stderr, /--args must be JSON/);
    const noApp = await runCli(['worker', '-A', './no/such/module.mjs'], { ASYNX_BROKER_URL: brokerUrl });
    assert.equal(noApp.code, 64);
    assert.match(noApp.stderr, /Cannot find the app module/);
    const badLevel = await runCli(['worker', '-A', FIXTURE_APP, '-l', 'loud'], { ASYNX_BROKER_URL: brokerUrl });
    assert.equal(badLevel.code, 64);
    const unknownCmd = await runCli(['frobnicate']);
    assert.equal(unknownCmd.code, 64);
  });

  it('broker unavailable exits 69 quickly', async () => {
    const file = join(tmp.dir, 'plain-file');
    writeFileSync(file, 'not a directory');
    const r = await runCli(['call', 't.add', '--args', '[1,2]'], { ASYNX_BROKER_URL: `sqlite://${file}/sub/x.db` });
    assert.equal(r.code, 69, r.stderr);
    assert.match(r.stderr, /Cannot open the SQLite database/);
    assert.doesNotMatch(r.stderr, /\u001b\[/, 'no colour when not a TTY');
  });

  it('call / result / purge against a real worker', async () => {
    const env = { ASYNX_BROKER_URL: brokerUrl };
    // Queue two tasks with no worker running, purge them, then check the count.
    await runCli(['call', 't.add', '--args', '[1,1]'], env);
    await runCli(['call', 't.add', '--args', '[1,1]', '-Q', 'other'], env);
    const purged = await runCli(['purge'], env);
    assert.equal(purged.code, 0);
    assert.match(purged.stdout, /Purged 1 message from celery/);
    const w = await startWorker({ brokerUrl, args: ['-c', '1', '-Q', 'celery,other'] });
    try {
      const ok = await runCli(['call', 't.add', '--args', '[2,3]', '--wait', '--timeout', '10'], env);
      assert.equal(ok.code, 0, ok.stderr);
      assert.equal(ok.stdout.trim(), '5');
      const kw = await runCli(['call', 't.sleep', '--args', '[10]', '-Q', 'other', '--wait'], env);
      assert.equal(kw.stdout.trim(), '10');
      const fail = await runCli(['call', 't.boom', '--wait'], env);
      assert.equal(fail.code, 1);
      assert.match(fail.stderr, /TypeError: kaput/);
      const sent = await runCli(['call', 't.add', '--args', '[4,4]', '--countdown', '0.2'], env);
      const id = sent.stdout.trim();
      assert.match(id, /^[0-9a-f-]{36}$/);
      const res = await runCli(['result', id, '--wait', '--timeout', '10'], env);
      assert.equal(res.code, 0);
      assert.deepEqual({ ...JSON.parse(res.stdout), traceback: null }, { id, state: 'SUCCESS', result: 8, traceback: null });
      const pending = await runCli(['result', 'no-such-id'], env);
      assert.equal(JSON.parse(pending.stdout).state, 'PENDING');
    } finally {
      assert.equal(await w.stop(), 0);
    }
  });
});
