// Call options are checked at the call with the option's name (issue 9 item 10); bad received fields are ProtocolErrors.

import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Asynx, ProtocolError, UsageError } from '../../src/index.js';
import { buildTaskMessage, decodeTaskMessage } from '../../src/protocol/codec.js';
import { tempDir } from '../helpers/tmp.js';

/** A UsageError `asynx.call.badOption` naming `option`. */
function badOption(option: string) {
  return (e: unknown) => {
    assert.ok(e instanceof UsageError, `expected a UsageError, got ${String(e)}`);
    assert.equal(e.code, 'asynx.call.badOption');
    assert.equal(e.facts.option, option);
    assert.match(e.message, new RegExp(`\\b${option}\\b`));
    return true;
  };
}

describe('call options', () => {
  const tmp = tempDir();
  after(() => tmp.cleanup());
  // No broker listens on port 1: every rejection below comes from the check, before any connect.
  const offline = new Asynx({ brokerUrl: 'amqp://127.0.0.1:1', configFile: false, connectTimeout: 3 });
  const t = offline.task('c.t', () => 1);
  after(() => offline.close());

  it('countdown: -5, a malformed countdown / expires / eta, and a bad priority are rejected at the call, naming the option', async () => {
    const t0 = Date.now();
    await assert.rejects(t.applyAsync({ countdown: -5 }), badOption('countdown'));
    await assert.rejects(t.applyAsync({ countdown: 'abc' }), badOption('countdown'));
    await assert.rejects(t.applyAsync({ expires: 'abc' }), badOption('expires'));
    await assert.rejects(t.applyAsync({ expires: -1 }), badOption('expires'));
    await assert.rejects(t.applyAsync({ eta: 'tomorrow' }), badOption('eta'));
    await assert.rejects(t.applyAsync({ eta: new Date('nope') }), badOption('eta'));
    await assert.rejects(t.applyAsync({ timeLimit: 'abc' }), badOption('timeLimit'));
    await assert.rejects(t.applyAsync({ softTimeLimit: 0 }), badOption('softTimeLimit'));
    await assert.rejects(t.applyAsync({ retries: -2 }), badOption('retries'));
    await assert.rejects(t.applyAsync({ queue: '' }), badOption('queue'));
    await assert.rejects(t.applyAsync({ link: { nope: 1 } as never }), badOption('link'));
    await assert.rejects(t.applyAsync({ link: offline.signature('c.next', [], {}, { priority: 300 }) }), badOption('link.options.priority'));
    assert.ok(Date.now() - t0 < 2_000, 'checked before connecting');
  });

  it('a bad priority is a UsageError from every entry point the caller uses (was a ProtocolError from applyAsync)', async () => {
    await assert.rejects(t.applyAsync({ priority: 300 }), badOption('priority'));
    await assert.rejects(offline.sendTask('c.t', [], {}, { priority: -1 }), badOption('priority'));
    await assert.rejects(offline.sendTask('c.t', [], {}, { priority: 1.5 }), badOption('priority'));
    assert.throws(() => offline.task('c.p', () => 1, { priority: 300 }), (e: unknown) => e instanceof UsageError && /priority/.test(e.message));
  });

  it('a received message with a bad priority is a ProtocolError', () => {
    const { message } = buildTaskMessage('c.t', [], {});
    assert.throws(() => decodeTaskMessage({ ...message, properties: { ...message.properties, priority: 300 } }), (e: unknown) => e instanceof ProtocolError && e.code === 'asynx.protocol.badPriority');
    assert.throws(() => decodeTaskMessage({ ...message, properties: { ...message.properties, priority: 'high' as unknown as number } }), ProtocolError);
  });

  it('a single link / linkError signature is sent as a one-element list (was silently dropped)', async () => {
    const path = join(tmp.dir, 'link.db');
    const app = new Asynx({ brokerUrl: `sqlite://${path}`, configFile: false });
    try {
      await app.sendTask('c.first', [1], {}, { link: app.signature('c.next', [2]), linkError: app.signature('c.onError'), expires: '2099-01-01T00:00:00Z' });
      const db = new Database(path, { readonly: true });
      try {
        const row = db.prepare('SELECT headers, body FROM messages').get() as { headers: string; body: string };
        const [, , embed] = JSON.parse(row.body) as [unknown, unknown, { callbacks: Array<{ task: string; args: unknown[] }>; errbacks: Array<{ task: string }> }];
        assert.deepEqual(embed.callbacks.map((s) => [s.task, s.args]), [['c.next', [2]]]);
        assert.deepEqual(embed.errbacks.map((s) => s.task), ['c.onError']);
        assert.match((JSON.parse(row.headers) as { expires: string }).expires, /^2099-01-01T00:00:00/);
      } finally {
        db.close();
      }
    } finally {
      await app.close();
    }
  });
});
