// The SQLite chord counter: members counted once by group_index, one firing, a redelivered completer may re-fire until sent.

import assert from 'node:assert/strict';
import { after, it } from 'node:test';
import { join } from 'node:path';
import { SqliteResultBackend } from '../../src/results/sqlite.js';
import type { ChordPart } from '../../src/results/backend.js';
import { tempDir } from '../helpers/tmp.js';

const tmp = tempDir();
after(() => tmp.cleanup());
const open = async (name: string) => {
  const b = new SqliteResultBackend(join(tmp.dir, name), { expiresMs: 60_000 });
  await b.connect();
  return b;
};
const part = (i: number, status = 'SUCCESS', taskId = `t${i}`): ChordPart => ({ groupId: 'g', groupIndex: i, taskId, status, result: status === 'SUCCESS' ? i * 10 : { exc_type: 'ValueError', exc_message: ['x'], exc_module: 'builtins' } });

it('counts each group_index once; only the completing member fires, with parts in group order', async () => {
  const b = await open('a.db');
  try {
    const chords = b.chords!;
    await chords.create('g', 3, { task: 'body', args: [], kwargs: {}, options: { task_id: 'B' }, subtask_type: null, immutable: false });
    assert.equal(await chords.partReturn(part(2)), null);
    assert.equal(await chords.partReturn(part(2)), null, 'a redelivered member is not counted again');
    assert.equal(await chords.partReturn(part(0)), null);
    const fired = await chords.partReturn(part(1));
    assert.ok(fired);
    assert.deepEqual(fired.parts.map((p) => [p.groupIndex, p.result]), [[0, 0], [1, 10], [2, 20]]);
    assert.equal((fired.body.options as Record<string, unknown>).task_id, 'B');
    assert.equal(await chords.partReturn(part(0)), null, 'another member never fires');
    assert.ok(await chords.partReturn(part(1)), 'the completer, redelivered before the body was marked sent, fires again');
    await chords.markSent('g');
    assert.equal(await chords.partReturn(part(1)), null, 'once sent, never again');
  } finally {
    await b.close();
  }
});

it('two connections to one file: 40 members reported from both, exactly one firing', async () => {
  const [x, y] = [await open('b.db'), await open('b.db')];
  try {
    await x.chords!.create('g', 40, { task: 'body', args: [], kwargs: {}, options: {}, subtask_type: null, immutable: false });
    const firings = (await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? x : y).chords!.partReturn(part(i, i === 7 ? 'FAILURE' : 'SUCCESS'))))).filter(Boolean);
    assert.equal(firings.length, 1);
    assert.equal(firings[0]!.parts.length, 40);
    assert.equal(firings[0]!.parts[7]!.status, 'FAILURE');
  } finally {
    await x.close();
    await y.close();
  }
});
