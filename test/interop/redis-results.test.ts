// Results across languages on one Redis (Celery's redis:// result backend): Python Celery 5.2 reads what an asynx
// worker stored and asynx reads what Python stored, values and exceptions, and saved GroupResults both ways.
// The tasks go over a SQLite broker: only the result backend is shared here (a chord across languages needs the
// Redis transport too; the chord counters are shared below without one, a member's count called directly).

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { Asynx, GroupResult } from '../../src/index.js';
import { celerySkip, runPython } from '../helpers/celery.js';
import { redisSkip, startRedis, type RedisServer } from '../helpers/redis.js';
import { tempDir } from '../helpers/tmp.js';
import { startWorker, type RunningWorker } from '../helpers/worker.js';
import { fileURLToPath } from 'node:url';

const skip = redisSkip() || celerySkip();
const INTEROP_APP = fileURLToPath(new URL('../fixtures/interop-app.mjs', import.meta.url));

type PyOut = Record<string, unknown>;

/** Runs test/fixtures/py/redis_results.py with the operations; one outcome per operation. */
async function py(backendUrl: string, ops: Array<Record<string, unknown>>): Promise<PyOut[]> {
  const r = await runPython(['redis_results.py', JSON.stringify(ops)], { brokerUrl: 'memory://', env: { RESULT_BACKEND: backendUrl }, timeoutMs: 60_000 });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  if (r.code !== 0 || !line.startsWith('[')) throw new Error(`Python results script failed (exit ${r.code}):\n${r.stderr.slice(-3000)}`);
  return JSON.parse(line) as PyOut[];
}

describe('redis:// results shared with Python Celery', { skip }, () => {
  let server: RedisServer;
  let url: string;
  let admin: Redis;
  const tmp = tempDir('asynx-redis-results-');
  const broker = `sqlite://${join(tmp.dir, 'broker.db')}`;
  let worker: RunningWorker | null = null;
  const apps: Asynx[] = [];
  const client = () => {
    const app = new Asynx({ configFile: false, brokerUrl: broker, resultBackend: url });
    apps.push(app);
    return app;
  };

  before(async () => {
    server = await startRedis();
    url = `${server.url}/1`;
    admin = new Redis({ host: server.host, port: server.port, db: 1, lazyConnect: true });
    await admin.connect();
  });
  after(async () => {
    for (const a of apps) await a.close().catch(() => undefined);
    await worker?.stop().catch(() => undefined);
    admin?.disconnect();
    await server?.dispose();
    tmp.cleanup();
  });

  test('Python reads what an asynx worker stored: a value, and an exception with its type and message', { timeout: 120_000 }, async () => {
    worker = await startWorker({ brokerUrl: broker, app: INTEROP_APP, args: ['-c', '1'], env: { ASYNX_RESULT_BACKEND: url } });
    const app = client();
    const ok = await app.sig<number>('add', [2, 3]).applyAsync();
    const bad = await app.sig('boom').applyAsync();
    const [value, error] = await py(url, [
      { op: 'get', id: ok.id },
      { op: 'get', id: bad.id },
    ]);
    assert.deepEqual(value, { value: 5 });
    assert.deepEqual(error, { error: 'ValueError', module: 'builtins', message: 'kaput' });
    // Celery's layout: the meta at celery-task-meta-<id>, with result_expires (1 day) as its TTL, fields in Celery's order.
    const raw = JSON.parse((await admin.get(`celery-task-meta-${ok.id}`))!) as Record<string, unknown>;
    assert.deepEqual(Object.keys(raw), ['status', 'result', 'traceback', 'children', 'date_done', 'task_id']);
    assert.match(String(raw.date_done), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$/, "Python's utcnow().isoformat()");
    const ttl = await admin.ttl(`celery-task-meta-${ok.id}`);
    assert.ok(ttl > 86_000 && ttl <= 86_400, `TTL ${ttl}`);
  });

  test('asynx reads what Python stored: a value, and an exception with its type and message; a wait is woken by Python\'s PUBLISH', { timeout: 60_000 }, async () => {
    const app = client();
    const [v, e, later] = [randomUUID(), randomUUID(), randomUUID()];
    const waiting = app.AsyncResult(later).get({ timeout: 30 });
    await py(url, [
      { op: 'store', id: v, value: { a: [1, 2], b: 'x' } },
      { op: 'fail', id: e, type: 'ValueError', message: 'bad input' },
      { op: 'store', id: later, value: 'woken' },
    ]);
    assert.deepEqual(await app.AsyncResult(v).get({ timeout: 5 }), { a: [1, 2], b: 'x' });
    await assert.rejects(app.AsyncResult(e).get({ timeout: 5 }), (err: Error & { remoteTraceback?: string | null }) => {
      assert.equal(err.name, 'ValueError');
      assert.equal(err.message, 'bad input');
      return true;
    });
    assert.equal(await waiting, 'woken');
    // The same layout as asynx writes: Python's meta keys in the same order, and the same TTL.
    const raw = JSON.parse((await admin.get(`celery-task-meta-${v}`))!) as Record<string, unknown>;
    assert.deepEqual(Object.keys(raw), ['status', 'result', 'traceback', 'children', 'date_done', 'task_id']);
    const ttl = await admin.ttl(`celery-task-meta-${v}`);
    assert.ok(ttl > 86_000 && ttl <= 86_400, `TTL ${ttl}`);
  });

  test('an exception stored by asynx is the same meta Python decodes: type, module, message', { timeout: 60_000 }, async () => {
    const app = client();
    const backend = await app.backend();
    const id = randomUUID();
    await backend.store({ taskId: id }, { task_id: id, status: 'FAILURE', result: { exc_type: 'KeyError', exc_message: ['missing'], exc_module: 'builtins' }, traceback: 'Error: missing\n    at js', children: [] });
    const [meta] = await py(url, [{ op: 'meta', id }]);
    assert.equal(meta!.status, 'FAILURE');
    assert.equal(meta!.result, "KeyError('missing')");
    assert.equal(meta!.traceback, 'Error: missing\n    at js');
    assert.equal(meta!.task_id, id);
  });

  test('a GroupResult saved by asynx is restored by Python, and one saved by Python is restored by asynx', { timeout: 60_000 }, async () => {
    const app = client();
    const ids = [randomUUID(), randomUUID(), randomUUID()];
    const jsGid = randomUUID();
    await new GroupResult(app, jsGid, ids.map((id) => app.AsyncResult(id))).save();
    const pyGid = randomUUID();
    const [restored, , missing] = await py(url, [
      { op: 'restore_group', id: jsGid },
      { op: 'save_group', id: pyGid, members: [...ids].reverse() },
      { op: 'restore_group', id: randomUUID() },
    ]);
    assert.deepEqual(restored, { members: ids });
    assert.deepEqual(missing, { members: null });
    const back = await GroupResult.restore(app, pyGid);
    assert.deepEqual(back?.results.map((r) => r.id), [...ids].reverse());
    assert.equal(await GroupResult.restore(app, randomUUID()), null);
    assert.ok((await admin.ttl(`celery-taskset-meta-${jsGid}`)) > 86_000, 'a saved group has the result TTL too');
  });

  test("chord counters shared: a chord sized by Python completes on an asynx member, and one created by asynx completes on a Python member", { timeout: 60_000 }, async () => {
    const app = client();
    const chords = (await app.backend()).chords!;
    const body = { task: 'c.tsum', args: [], kwargs: {}, options: {}, subtask_type: null, immutable: false };
    // Python sizes the chord (chord.run's set_chord_size) and counts member 0; asynx counts member 1 and fires.
    const pyGid = randomUUID();
    const [, first] = await py(url, [
      { op: 'chord_size', group: pyGid, size: 2 },
      { op: 'chord_part', group: pyGid, index: 0, id: `${pyGid}-0`, value: 10, body },
    ]);
    assert.deepEqual(first, { fired: null });
    const firing = await chords.partReturn({ groupId: pyGid, groupIndex: 1, taskId: `${pyGid}-1`, status: 'SUCCESS', result: 20, body });
    assert.deepEqual(firing?.parts.map((p) => [p.taskId, p.result]), [[`${pyGid}-0`, 10], [`${pyGid}-1`, 20]]);
    // asynx creates the chord and counts member 0; a Python member completes it and sends the body with both results.
    const jsGid = randomUUID();
    await chords.create(jsGid, 2, body);
    assert.equal(await chords.partReturn({ groupId: jsGid, groupIndex: 0, taskId: `${jsGid}-0`, status: 'SUCCESS', result: 'js', body }), null);
    const [last] = await py(url, [{ op: 'chord_part', group: jsGid, index: 1, id: `${jsGid}-1`, value: 'py', body }]);
    assert.deepEqual(last, { fired: ['js', 'py'] });
    assert.equal(await admin.exists(`celery-taskset-meta-${jsGid}.j`, `celery-taskset-meta-${jsGid}.s`), 0, 'Python cleared the counters after sending');
  });
});
