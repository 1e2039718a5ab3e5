// Security cases of the fault matrix: a pickle content type is refused; the HTTP task refuses hosts outside
// httpAllowedHosts and never follows a redirect to one; a pidfile path that is a symlink is refused.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Asynx } from '../../src/index.js';
import { buildTaskMessage } from '../../src/protocol/codec.js';
import { BIN, FAULTS_APP, Ledger, Nodes, recordRow, ROOT, scratch, waitFor, type Node } from './harness.js';

describe('security', () => {
  const tmp = scratch('sec');
  const nodes = new Nodes();
  const dbPath = join(tmp.dir, 'sec.db');
  const brokerUrl = `sqlite://${dbPath}`;
  let server: Server;
  let port = 0;
  const hits: string[] = [];
  let node: Node;
  let client: Asynx;

  before(async () => {
    server = createServer((req, res) => {
      hits.push(`${req.headers.host}${req.url}`);
      if (req.url === '/ok') res.end('fine');
      else if (req.url === '/to-outside') res.writeHead(302, { location: `http://localhost:${port}/secret` }).end();
      else if (req.url === '/to-inside') res.writeHead(302, { location: `http://127.0.0.1:${port}/ok` }).end();
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as { port: number }).port;
    node = await nodes.start({ dir: tmp.dir, brokerUrl, name: 'sec', concurrency: 2, env: { ASYNX_HTTP_ALLOWED_HOSTS: '127.0.0.1' } });
    client = new Asynx({ brokerUrl, configFile: false });
  });
  after(async () => {
    await client?.close();
    await nodes.stopAll();
    await new Promise((r) => server?.close(r));
    tmp.cleanup();
  });

  it('refuses a pickle content type: dead-lettered, never run', async () => {
    const ledger = new Ledger(join(tmp.dir, 'pickle.ledger'));
    const { message } = buildTaskMessage('f.ledger', [ledger.path, 0], {}, {});
    message.properties.content_type = 'application/x-python-serialize';
    message.body = Buffer.from("cos\nsystem\n(S'touch /tmp/asynx-pwned'\ntR.").toString('base64');
    const transport = await client.transport();
    await transport.publish('celery', message);
    const db = new Database(dbPath, { readonly: true, timeout: 10_000 });
    const dead = await waitFor('the pickle message dead-lettered', () => db.prepare('SELECT reason, headers FROM dead_letters').all().find((r) => JSON.parse((r as { headers: string }).headers).id === message.headers.id) as { reason: string } | undefined, 20_000);
    db.close();
    assert.match(dead.reason, /asynx\.protocol\.contentType.*application\/x-python-serialize/);
    assert.equal(ledger.counts().size, 0, 'the task never ran');
    const err = await client.AsyncResult(message.headers.id).get({ timeout: 10 }).catch((e: unknown) => e as Error);
    assert.ok(err instanceof Error && /content type/.test(err.message), 'the caller sees the refusal as the task failure');
    recordRow({ fault: 'security: pickle content type', broker: 'sqlite', mode: 'refused', tasks: 1, lost: 0, duplicated: 0, dropped: 0, recoverMs: null, totalMs: 0, note: 'dead-lettered, never run' });
  });

  it('the HTTP task refuses hosts outside httpAllowedHosts and redirects to them', async () => {
    const call = async (path: string, host = '127.0.0.1') => {
      const r = await client.sendTask<{ status: number; body: string }>('asynx.http.dispatch', [{ url: `http://${host}:${port}${path}`, maxRetries: 0 }]);
      return r.get({ timeout: 20 }).then((v) => ({ ok: true as const, v }), (e: Error) => ({ ok: false as const, e }));
    };
    const ok = await call('/ok');
    assert.ok(ok.ok && ok.v.body === 'fine', 'an allowed host works');
    const direct = await call('/secret', 'localhost');
    assert.ok(!direct.ok && /not in httpAllowedHosts/.test(direct.e.message), `a host outside the list is refused: ${direct.ok ? 'succeeded' : direct.e.message}`);
    const redirected = await call('/to-outside');
    assert.ok(!redirected.ok && /not in httpAllowedHosts/.test(redirected.e.message), 'a redirect to a host outside the list is refused');
    const inside = await call('/to-inside');
    assert.ok(inside.ok && inside.v.body === 'fine', 'a redirect inside the list is followed');
    assert.deepEqual(hits.filter((h) => h.includes('/secret')), [], 'the outside host was never contacted');
    recordRow({ fault: 'security: HTTP host allowlist + redirect', broker: 'sqlite', mode: 'refused', tasks: 4, lost: 0, duplicated: 0, dropped: 0, recoverMs: null, totalMs: 0, note: 'outside host never contacted' });
  });

  it('refuses a pidfile path that is a symlink, and leaves its target alone', () => {
    const victim = join(tmp.dir, 'victim.txt');
    writeFileSync(victim, 'precious\n');
    const link = join(tmp.dir, 'evil.pid');
    symlinkSync(victim, link);
    const r = spawnSync(process.execPath, [BIN, 'worker', '-A', FAULTS_APP, '-n', 'evil@localhost', '--pidfile', link], { cwd: ROOT, env: { ...process.env, NO_COLOR: '1', ASYNX_BROKER_URL: brokerUrl }, encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 73, `exit code 73 (cannot create): ${r.stderr}`);
    assert.match(r.stderr + r.stdout, /symbolic link/);
    assert.equal(readFileSync(victim, 'utf8'), 'precious\n', 'the link target is untouched');
    recordRow({ fault: 'security: symlinked pidfile', broker: 'sqlite', mode: 'refused', tasks: 0, lost: 0, duplicated: 0, dropped: 0, recoverMs: null, totalMs: 0, note: 'exit 73, target untouched' });
  });
});
