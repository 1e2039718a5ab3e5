// The SQLite remote-control mailbox: requests reach the nodes they name, expired ones are ignored, the tables stay bounded.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { openControlClient, type ControlClient } from '../../src/control/client.js';
import { startSqliteMailbox, type SqliteMailbox } from '../../src/control/sqlite-mailbox.js';
import { MAX_ROWS } from '../../src/control/sqlite-mailbox-store.js';
import { openDb } from '../../src/transports/sqlite-db.js';
import { tempDir, waitFor } from '../helpers/tmp.js';

describe('SQLite remote-control mailbox', () => {
  const tmp = tempDir('asynx-mailbox-');
  const path = join(tmp.dir, 'broker.db');
  const url = `sqlite://${path}`;
  const boxes: SqliteMailbox[] = [];
  let client: ControlClient;
  let db: Database.Database;
  const count = (table: string): number => (db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n;

  before(async () => {
    openDb(path).close(); // the schema
    db = new Database(path);
    boxes.push(await startSqliteMailbox(path, 'a@host', { registered: () => ['tasks.add'] }, { pruneMs: 100 }));
    boxes.push(await startSqliteMailbox(path, 'b@host', { registered: () => ['tasks.mul'], boom: () => { throw new RangeError('no'); } }, { pruneMs: 100 }));
    client = await openControlClient(url);
  });
  after(async () => {
    await client?.close();
    for (const b of boxes) await b.close();
    db?.close();
    tmp.cleanup();
  });

  test('a broadcast gets one reply per node, in Celery\'s {node: answer} shape', async () => {
    const replies = await client.broadcast('ping', {}, { timeoutMs: 1000 });
    assert.deepEqual(replies.sort((x, y) => Object.keys(x)[0]!.localeCompare(Object.keys(y)[0]!)), [{ 'a@host': { ok: 'pong' } }, { 'b@host': { ok: 'pong' } }]);
  });

  test('a destination is answered by that node only (and the wait ends at the first reply)', async () => {
    const replies = await client.broadcast('registered', {}, { destination: ['b@host'], timeoutMs: 5000 });
    assert.deepEqual(replies, [{ 'b@host': ['tasks.mul'] }]);
    assert.deepEqual(await client.broadcast('ping', {}, { destination: ['nobody@host'], timeoutMs: 300 }), []);
  });

  test('an unknown method and a throwing handler answer {error: …}', async () => {
    assert.deepEqual(await client.broadcast('frob', {}, { destination: ['a@host'] }), [{ 'a@host': { error: "KeyError('frob')" } }]);
    assert.deepEqual(await client.broadcast('boom', {}, { destination: ['b@host'] }), [{ 'b@host': { error: 'RangeError("no")' } }]);
  });

  test('an expired request gets no answer, a live one written the same way does', async () => {
    const insert = db.prepare('INSERT INTO control_requests (body, clock, created_at, expires_at) VALUES (?, 1, ?, ?)');
    const body = (ticket: string) => JSON.stringify({ method: 'ping', arguments: {}, destination: null, pattern: null, matcher: null, ticket, reply_to: { exchange: 'reply.celery.pidbox', routing_key: 'x' } });
    const expired = randomUUID();
    const live = randomUUID();
    insert.run(body(expired), Date.now(), Date.now() - 1);
    insert.run(body(live), Date.now(), Date.now() + 1_500); // expires soon: the next test sees it pruned
    const replies = (t: string) => db.prepare('SELECT node FROM control_replies WHERE ticket = ? ORDER BY node').all(t) as Array<{ node: string }>;
    await waitFor('both nodes answer the live request', () => replies(live).length === 2, 5_000);
    assert.deepEqual(replies(expired), [], 'the expired request (written before the live one) was not answered');
  });

  test('after the calls the tables empty: a client deletes its request and replies, the rest expire', async () => {
    await client.broadcast('ping', {}, { timeoutMs: 200 });
    await waitFor('expired rows pruned', () => count('control_requests') === 0 && count('control_replies') === 0, 5_000);
  });

  test('rows a killed client left behind expire; a flood is capped', async () => {
    const insert = db.prepare('INSERT INTO control_requests (body, clock, created_at, expires_at) VALUES (?, 1, ?, ?)');
    const reply = db.prepare('INSERT INTO control_replies (ticket, node, body, clock, created_at, expires_at) VALUES (?, ?, ?, 1, ?, ?)');
    db.transaction(() => {
      for (let i = 0; i < 50; i++) reply.run(randomUUID(), 'a@host', '{}', Date.now(), Date.now() - 5_000);
      // Casts to nodes that do not exist: nobody answers, nobody deletes them but the prune.
      const cast = JSON.stringify({ method: 'ping', arguments: {}, destination: ['gone@host'] });
      for (let i = 0; i < MAX_ROWS + 500; i++) insert.run(cast, Date.now(), Date.now() + 60_000);
    })();
    await waitFor('expired replies pruned and requests capped', () => count('control_replies') === 0 && count('control_requests') <= MAX_ROWS, 10_000);
    // Still answering after the flood (the nodes read past it).
    const replies = await client.broadcast('ping', {}, { destination: ['a@host'], timeoutMs: 5000 });
    assert.deepEqual(replies, [{ 'a@host': { ok: 'pong' } }]);
  });

  test('a bad destination and a bad timeout are usage errors; close is idempotent; a closed client refuses', async () => {
    await assert.rejects(client.broadcast('ping', {}, { destination: [''] }), { code: 'asynx.control.badDestination' });
    await assert.rejects(client.broadcast('ping', {}, { timeoutMs: 0 }), { code: 'asynx.control.badTimeout' });
    const other = await openControlClient(url);
    assert.equal(other.close(), other.close());
    await other.close();
    await assert.rejects(other.broadcast('ping'), { code: 'asynx.control.closed' });
  });
});
