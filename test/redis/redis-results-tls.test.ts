// rediss:// for the result backend: a private redis-server with TLS (a throwaway CA made by openssl), verified
// with ssl_ca_certs, unverified with ssl_cert_reqs=none, refused when the certificate cannot be checked.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BrokerUnavailableError } from '../../src/errors.js';
import { RedisResultBackend } from '../../src/results/redis.js';
import { freePort } from '../helpers/rabbitmq.js';
import { redisSkip, startRedis, type RedisServer } from '../helpers/redis.js';
import { tempDir } from '../helpers/tmp.js';

const OPENSSL = '/usr/bin/openssl';
const skip = redisSkip() || (existsSync(OPENSSL) ? false : `${OPENSSL} is missing: apt-get install -y openssl`);

describe('rediss:// result backend', { skip }, () => {
  const tmp = tempDir('asynx-redis-tls-');
  const f = (name: string) => join(tmp.dir, name);
  let server: RedisServer;
  let tlsPort: number;
  const open: RedisResultBackend[] = [];
  const make = (url: string) => {
    const b = new RedisResultBackend(url, { expiresMs: 60_000, connectTimeoutMs: 3_000, publishTimeoutMs: 3_000 });
    open.push(b);
    return b;
  };

  before(async () => {
    const ssl = (...args: string[]) => execFileSync(OPENSSL, args, { cwd: tmp.dir, stdio: 'pipe', timeout: 30_000 });
    ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=asynx test CA');
    ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1');
    writeFileSync(f('san.ext'), 'subjectAltName=IP:127.0.0.1\n');
    ssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '1', '-extfile', 'san.ext');
    tlsPort = await freePort();
    // The plain port stays for the harness's PING; the backend uses the TLS one.
    server = await startRedis({ args: ['--tls-port', String(tlsPort), '--tls-cert-file', f('server.pem'), '--tls-key-file', f('server.key'), '--tls-ca-cert-file', f('ca.pem'), '--tls-auth-clients', 'no'] });
  });
  after(async () => {
    for (const b of open) await b.close().catch(() => undefined);
    await server?.dispose();
    tmp.cleanup();
  });

  test('verified against ssl_ca_certs: store, wait, get', async () => {
    const b = make(`rediss://127.0.0.1:${tlsPort}/3?ssl_cert_reqs=required&ssl_ca_certs=${encodeURIComponent(f('ca.pem'))}`);
    const id = randomUUID();
    const waiting = b.wait(id, 10_000);
    await make(`rediss://127.0.0.1:${tlsPort}/3?ssl_cert_reqs=none`).store({ taskId: id }, { task_id: id, status: 'SUCCESS', result: 'over tls', traceback: null, children: [] });
    assert.equal((await waiting).result, 'over tls');
    assert.equal((await b.get(id))?.result, 'over tls');
  });

  test('a certificate that cannot be verified (no CA given, ssl_cert_reqs required by default) is refused with BrokerUnavailableError', async () => {
    const b = make(`rediss://127.0.0.1:${tlsPort}/3`);
    await assert.rejects(b.get(randomUUID()), (e: unknown) => e instanceof BrokerUnavailableError && /Redis result backend/.test(e.message));
  });
});
