// starmap / chunks signatures and messages compared with what Python Celery 5.2 builds for the same calls
// (Celery's signature dicts and, through its in-memory broker, the message it would publish).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { after, it } from 'node:test';
import Database from 'better-sqlite3';
import { Asynx } from '../../src/index.js';
import { celerySkip, PYTHON } from '../helpers/celery.js';
import { tempDir } from '../helpers/tmp.js';

const PY = `
import json
from celery import Celery
app = Celery('w', broker='memory://', backend='cache+memory://')
@app.task(name='c.add')
def add(x, y):
    return x + y
out = {
    'starmap': dict(add.starmap([(2, 2), (4, 4)])),
    'chunks': dict(add.chunks([(1, 1), (2, 2), (3, 3)], 2)),
    'group': [dict(t) for t in add.chunks([(1, 1), (2, 2), (3, 3)], 2).group().tasks],
}
add.starmap([(2, 2), (4, 4)]).apply_async()
with app.connection_for_write() as conn:
    m = conn.SimpleQueue('celery').get(timeout=5)
    out['message'] = {'task': m.headers['task'], 'body': m.payload}
print(json.dumps(out))
`;

const json = (v: unknown) => JSON.parse(JSON.stringify(v)) as unknown;

it('starmap, chunks and chunks.group() are Celery 5.2\'s dicts; the starmap message body is Celery\'s', { skip: celerySkip() }, async () => {
  const r = spawnSync(PYTHON, ['-c', PY], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  const celery = JSON.parse(r.stdout.trim().split('\n').pop()!) as { starmap: unknown; chunks: unknown; group: unknown[]; message: { task: string; body: unknown } };

  const tmp = tempDir('asynx-starmap-celery-');
  const db = join(tmp.dir, 'w.db');
  const app = new Asynx({ brokerUrl: `sqlite://${db}`, configFile: false });
  after(async () => {
    await app.close();
    tmp.cleanup();
  });
  const add = app.task('c.add', (x: number, y: number) => x + y);
  assert.deepEqual(json(add.starmap([[2, 2], [4, 4]])), celery.starmap);
  assert.deepEqual(json(add.chunks([[1, 1], [2, 2], [3, 3]], 2)), celery.chunks);
  assert.deepEqual(json(add.chunks([[1, 1], [2, 2], [3, 3]], 2).group().tasks), celery.group);

  await add.starmap([[2, 2], [4, 4]]).applyAsync();
  const d = new Database(db, { readonly: true });
  try {
    const row = d.prepare("SELECT headers, body FROM messages WHERE queue = 'celery'").get() as { headers: string; body: string };
    assert.equal((JSON.parse(row.headers) as { task: string }).task, celery.message.task);
    assert.deepEqual(JSON.parse(row.body), celery.message.body);
  } finally {
    d.close();
  }
});
