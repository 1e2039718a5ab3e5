// `asynx call --countdown/--expires/--timeout` and `asynx result --timeout` follow the one duration rule.

import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { runCli } from '../helpers/worker.js';
import { tempDir } from '../helpers/tmp.js';

describe('CLI duration flags', () => {
  const tmp = tempDir();
  const dbPath = join(tmp.dir, 'd.db');
  const env = { ASYNX_BROKER_URL: `sqlite://${dbPath}` };
  after(() => tmp.cleanup());

  it("--countdown 2s and --expires 1m are accepted (were 'must be a number'); a bare number is seconds", async () => {
    const t0 = Date.now();
    const r = await runCli(['call', 'some.task', '--countdown', '2s', '--expires', '1m'], env);
    assert.equal(r.code, 0, r.stderr);
    const id = r.stdout.trim();
    const db = new Database(dbPath, { readonly: true });
    try {
      const h = JSON.parse((db.prepare('SELECT headers FROM messages').get() as { headers: string }).headers) as { id: string; eta: string; expires: string };
      assert.equal(h.id, id);
      assert.ok(Date.parse(h.eta) - t0 >= 1_900, 'eta about 2 s ahead');
      assert.ok(Date.parse(h.expires) - t0 >= 59_000, 'expires about a minute ahead');
    } finally {
      db.close();
    }
  });

  it('a malformed duration flag exits 64 naming the flag', async () => {
    for (const flag of ['--countdown', '--expires']) {
      const r = await runCli(['call', 'some.task', flag, 'abc'], env);
      assert.equal(r.code, 64, r.stderr);
      assert.match(r.stderr, new RegExp(`${flag}: 'abc' is not a duration`));
    }
    const count = () => {
      const db = new Database(dbPath, { readonly: true });
      try {
        return (db.prepare('SELECT COUNT(*) AS n FROM messages').get() as { n: number }).n;
      } finally {
        db.close();
      }
    };
    const sent = count();
    const before = await runCli(['call', 'some.task', '--wait', '--timeout', 'soon'], env);
    assert.equal(before.code, 64, before.stderr);
    assert.match(before.stderr, /--timeout: 'soon' is not a duration/);
    assert.equal(count(), sent, 'a bad --timeout sends nothing');
    const r = await runCli(['result', '00000000-0000-0000-0000-000000000000', '--wait', '--timeout', 'soon'], env);
    assert.equal(r.code, 64, r.stderr);
    assert.match(r.stderr, /--timeout: 'soon' is not a duration/);
  });

  it('result --wait --timeout 300ms gives up after about 300 ms', async () => {
    const t0 = Date.now();
    const r = await runCli(['result', '00000000-0000-0000-0000-000000000000', '--wait', '--timeout', '300ms'], env);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /not ready within 300 ms/);
    assert.ok(Date.now() - t0 < 10_000);
  });
});
