// Fault: malformed messages interleaved with good ones (SQLite): bad JSON, missing headers, wrong types,
// a 10 MB body, an unknown task, a pickle content type. Each bad one is dead-lettered with its reason,
// none of them runs, and every good task completes exactly once.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Asynx } from '../../src/index.js';
import { buildTaskMessage } from '../../src/protocol/codec.js';
import type { WireMessage } from '../../src/protocol/message.js';
import type { SqliteTransport } from '../../src/transports/sqlite.js';
import { Ledger, Nodes, Progress, recordRow, scaled, scratch, waitFor } from './harness.js';

interface Bad {
  kind: string;
  /** The dead-letter reason must match this. */
  reason: RegExp;
  message: () => WireMessage;
}

describe('fault: malformed messages interleaved with good ones (SQLite)', () => {
  const tmp = scratch('bad');
  const nodes = new Nodes();
  after(async () => {
    await nodes.stopAll();
    tmp.cleanup();
  });

  it('dead-letters each bad message with its reason; every good task completes once', async () => {
    const n = scaled(10_000);
    const dbPath = join(tmp.dir, 'bad.db');
    const brokerUrl = `sqlite://${dbPath}`;
    const ledger = new Ledger(join(tmp.dir, 'bad.ledger'));
    const client = new Asynx({ brokerUrl, configFile: false, resultBackend: 'none' });
    const transport = (await client.transport()) as SqliteTransport;
    // A valid ledger message to mangle: if any bad one ran, its id would show up in the ledger.
    const good = () => buildTaskMessage('f.ledger', [ledger.path, 0], {}, { ignoreResult: true }).message;
    const withBody = (body: string) => ({ ...good(), body });
    const bads: Bad[] = [
      { kind: 'body not JSON', reason: /badJson/, message: () => withBody('[[1, 2], {}, {') },
      { kind: 'body not [args, kwargs, embed]', reason: /badBody/, message: () => withBody('{"args": []}') },
      { kind: 'args not an array', reason: /badBody/, message: () => withBody('["x", {}, {}]') },
      { kind: 'no headers', reason: /noHeaders|noTask/, message: () => ({ ...good(), headers: {} as WireMessage['headers'] }) },
      { kind: 'id not a string', reason: /noId/, message: () => { const m = good(); return { ...m, headers: { ...m.headers, id: 42 as unknown as string } }; } },
      { kind: 'retries a string', reason: /badHeader/, message: () => { const m = good(); return { ...m, headers: { ...m.headers, retries: '-1' as unknown as number } }; } },
      { kind: 'unknown task', reason: /notRegistered|NotRegistered|not registered/i, message: () => buildTaskMessage('f.nope', [ledger.path], {}).message },
      { kind: 'pickle content type', reason: /contentType/, message: () => ({ ...good(), properties: { ...good().properties, content_type: 'application/x-python-serialize' }, body: Buffer.from('cos\nsystem\n(S\'touch /tmp/pwned\'\ntR.').toString('base64') }) },
    ];
    const goodIds: string[] = [];
    const badIds = new Set<string>();
    let bigId = '';
    const every = Math.max(1, Math.floor(n / 10));
    const t0 = Date.now();
    const node = await nodes.start({ dir: tmp.dir, brokerUrl, name: 'bad', concurrency: 2 });
    const progress = new Progress(ledger);
    for (let i = 0; i < n; i++) {
      if (i === Math.floor(n / 2)) {
        // 10 MB body on a valid task: it must go through the broker and the pool IPC and run.
        const { message } = buildTaskMessage('f.ledger', [ledger.path, 0, 'x'.repeat(10 * 1024 * 1024)], {}, { ignoreResult: true });
        await transport.publish('celery', message);
        bigId = message.headers.id;
        goodIds.push(bigId);
        continue;
      }
      if (i % every === every - 1) {
        for (const b of bads) {
          const m = b.message();
          if (typeof m.headers?.id === 'string') badIds.add(m.headers.id);
          await transport.publish('celery', m);
        }
      }
      const { message } = buildTaskMessage('f.ledger', [ledger.path, 0], {}, { ignoreResult: true });
      await transport.publish('celery', message);
      goodIds.push(message.headers.id);
    }
    await ledger.waitAll(goodIds, 180_000);
    const rounds = Math.floor(n / every);
    const expectedDead = rounds * bads.length;
    const db = new Database(dbPath, { readonly: true, timeout: 10_000 });
    const dead = () => db.prepare('SELECT reason, headers FROM dead_letters').all() as Array<{ reason: string; headers: string }>;
    await waitFor(`${expectedDead} dead letters`, () => dead().length >= expectedDead, 60_000, 200);
    progress.stop();
    const rows = dead();
    db.close();
    const { lost, duplicated } = ledger.tally(goodIds);
    const ran = [...ledger.counts().keys()].filter((id) => badIds.has(id));
    recordRow({ fault: `malformed ×${expectedDead} (8 kinds) + 10 MB body`, broker: 'sqlite', mode: 'acks-early (≤1)', tasks: n, lost, duplicated, dropped: 0, recoverMs: null, totalMs: Date.now() - t0, note: `${rows.length} dead-lettered, 0 crashes` });
    await client.close();
    assert.equal(await node.stop(), 0, 'the worker survived and stopped cleanly');
    assert.equal(lost, 0);
    assert.equal(duplicated, 0);
    assert.deepEqual(ran, [], 'no malformed message ran');
    assert.equal(rows.length, expectedDead, 'every bad message is dead-lettered, and nothing else');
    for (const b of bads) {
      const sharing = bads.filter((x) => x.reason.source === b.reason.source).length;
      assert.equal(rows.filter((r) => b.reason.test(r.reason)).length, rounds * sharing, `${b.kind}: dead-lettered with a reason matching ${b.reason}`);
    }
    assert.doesNotMatch(node.log(), /Pool child .* exited unexpectedly/, 'no pool child died');
    assert.ok(ledger.counts().has(bigId), 'the 10 MB message ran');
  });

  it('a row whose stored headers are not JSON is dead-lettered, not a stuck queue', async () => {
    const dbPath = join(tmp.dir, 'raw.db');
    const brokerUrl = `sqlite://${dbPath}`;
    const ledger = new Ledger(join(tmp.dir, 'raw.ledger'));
    const client = new Asynx({ brokerUrl, configFile: false, resultBackend: 'none' });
    const transport = (await client.transport()) as SqliteTransport;
    const db = new Database(dbPath, { timeout: 10_000 });
    db.prepare('INSERT INTO messages (queue, priority, state, visible_at, properties, headers, body, created_at) VALUES (?, 0, 0, ?, ?, ?, ?, ?)').run('celery', Date.now(), '{}', '{"id": "' + randomUUID() + '", oops', '[[], {}, {}]', Date.now());
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) {
      const { message } = buildTaskMessage('f.ledger', [ledger.path, 0], {}, { ignoreResult: true });
      await transport.publish('celery', message);
      ids.push(message.headers.id);
    }
    const node = await nodes.start({ dir: tmp.dir, brokerUrl, name: 'raw', concurrency: 2 });
    await ledger.waitAll(ids, 30_000);
    const rows = db.prepare('SELECT reason FROM dead_letters').all() as Array<{ reason: string }>;
    db.close();
    await client.close();
    assert.equal(await node.stop(), 0);
    assert.equal(rows.length, 1);
    assert.match(rows[0]!.reason, /badRow/);
  });
});
