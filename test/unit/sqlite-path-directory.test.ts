// A SQLite URL into a missing directory is an error naming it (nothing created); only the default .asynx folder is made.

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { DEFAULT_SQLITE_URL } from '../../src/config.js';
import { UsageError } from '../../src/errors.js';
import { Asynx } from '../../src/index.js';
import { SqliteResultBackend } from '../../src/results/sqlite.js';
import { SqliteTransport } from '../../src/transports/sqlite.js';
import { sqlitePath } from '../../src/urls.js';
import { FIXTURE_APP, runCli } from '../helpers/worker.js';
import { tempDir } from '../helpers/tmp.js';

const isNoDirectory = (dir: string) => (err: unknown) => {
  assert.ok(err instanceof UsageError, String(err));
  assert.equal(err.code, 'asynx.sqlite.noDirectory');
  assert.equal(err.exitCode, 64);
  assert.ok(err.message.includes(`The directory ${dir} for the SQLite database`), err.message);
  assert.match(err.message, /does not exist: create it/);
  return true;
};

describe('SQLite database paths: a missing directory is an error, not a silently created tree', () => {
  const tmp = tempDir();
  after(() => tmp.cleanup());

  it('the broker into a missing directory: asynx.sqlite.noDirectory naming it, and nothing created', async () => {
    const missing = join(tmp.dir, 'nonexistent-dir');
    const t = new SqliteTransport(join(missing, 'sub', 'x.db'));
    await assert.rejects(t.connect(), isNoDirectory(join(missing, 'sub')));
    await t.close();
    assert.equal(existsSync(missing), false, 'no directory tree was created');
  });

  it('the result store into a missing directory: the same error, nothing created', async () => {
    const missing = join(tmp.dir, 'no-results-dir');
    const b = new SqliteResultBackend(join(missing, 'r.db'), { expiresMs: 1_000 });
    await assert.rejects(b.connect(), isNoDirectory(missing));
    await b.close();
    assert.equal(existsSync(missing), false);
  });

  it('a path under /proc fails at once instead of looping', async () => {
    const started = Date.now();
    const t = new SqliteTransport('/proc/asynx-no-such/sub/x.db');
    await assert.rejects(t.connect(), isNoDirectory('/proc/asynx-no-such/sub'));
    await t.close();
    const t2 = new SqliteTransport('/proc/.asynx/x.db');
    await assert.rejects(t2.connect(), (err: unknown) => err instanceof Error && (err as { code?: string }).code === 'asynx.sqlite.cantOpen');
    await t2.close();
    assert.ok(Date.now() - started < 2_000, `took ${Date.now() - started} ms`);
  });

  it('the default URL in a fresh directory creates ./.asynx (one level) and the database in it', async () => {
    const cwd = join(tmp.dir, 'fresh');
    mkdirSync(cwd);
    const t = new SqliteTransport(sqlitePath(DEFAULT_SQLITE_URL, cwd));
    await t.connect();
    await t.close();
    assert.deepEqual(readdirSync(join(cwd, '.asynx')).filter((f) => f === 'asynx.db'), ['asynx.db']);
  });

  it('an existing directory: opens as before', async () => {
    const app = new Asynx({ brokerUrl: `sqlite://${join(tmp.dir, 'ok.db')}`, configFile: false });
    try {
      await app.sendTask('t.add', [1, 2]);
    } finally {
      await app.close();
    }
    assert.ok(existsSync(join(tmp.dir, 'ok.db')));
  });

  it('asynx call / asynx worker -b sqlite:///missing/x.db: exit 64 with one line naming the directory', async () => {
    const missing = join(tmp.dir, 'missing');
    const url = `sqlite://${join(missing, 'x.db')}`;
    for (const args of [['call', 't.add', '-b', url], ['worker', '-A', FIXTURE_APP, '-b', url]]) {
      const r = await runCli(args, {}, 20_000, tmp.dir);
      assert.equal(r.code, 64, `${args[0]}: ${r.stderr}`);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, r.stderr);
      assert.ok(lines[0]!.includes(`The directory ${missing} for the SQLite database`), r.stderr);
      assert.equal(existsSync(missing), false, `${args[0]} created nothing`);
    }
  });
});
