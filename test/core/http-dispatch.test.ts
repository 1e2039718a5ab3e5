// The built-in HTTP dispatch task against a local HTTP server, run by a real worker.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Asynx, BrokerUnavailableError, RemoteTaskError } from '../../src/index.js';
import { startWorker, type RunningWorker } from '../helpers/worker.js';
import { tempDir } from '../helpers/tmp.js';

describe('app.http.dispatch', () => {
  const tmp = tempDir();
  const brokerUrl = `sqlite://${join(tmp.dir, 'h.db')}`;
  let server: Server;
  let base = '';
  let worker: RunningWorker;
  let client: Asynx;
  const hits = new Map<string, number>();

  before(async () => {
    server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      const count = (hits.get(url.pathname) ?? 0) + 1;
      hits.set(url.pathname, count);
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        if (url.pathname === '/ok') {
          res.writeHead(200, { 'content-type': 'application/json', 'x-seen': String(count) });
          res.end(JSON.stringify({ method: req.method, q: url.searchParams.get('q'), body: body ? JSON.parse(body) : null, auth: req.headers.authorization ?? null }));
        } else if (url.pathname === '/flaky') {
          res.writeHead(count <= 2 ? 503 : 200);
          res.end(count <= 2 ? 'busy' : 'done');
        } else if (url.pathname === '/missing') {
          res.writeHead(404);
          res.end('no such thing');
        } else if (url.pathname === '/big') {
          res.writeHead(200);
          res.end('x'.repeat(100_000));
        } else if (url.pathname === '/redirect-out') {
          res.writeHead(302, { location: 'http://localhost:1/elsewhere' });
          res.end();
        } else if (url.pathname === '/redirect-in') {
          res.writeHead(302, { location: '/ok' });
          res.end();
        } else {
          res.writeHead(500);
          res.end('always broken');
        }
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    worker = await startWorker({ brokerUrl, args: ['-c', '2'], env: { ASYNX_HTTP_MAX_BODY_BYTES: '1000', ASYNX_HTTP_ALLOWED_HOSTS: `127.0.0.1:${(server.address() as AddressInfo).port}` } });
    client = new Asynx({ brokerUrl, configFile: false });
  });
  after(async () => {
    await client.close();
    await worker.stop();
    await new Promise((r) => server.close(r));
    tmp.cleanup();
  });

  it('makes the request from the worker and stores { status, headers, body }', async () => {
    const r = await client.http.dispatch(`${base}/ok`, { params: { q: 'hi' }, json: { a: 1 }, headers: { authorization: 'Bearer t' } });
    const res = await r.get({ timeout: 10_000 });
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-type'], 'application/json');
    assert.deepEqual(JSON.parse(res.body), { method: 'POST', q: 'hi', body: { a: 1 }, auth: 'Bearer t' });
    assert.equal(res.truncated, false);
  });

  it('retries 5xx with backoff and succeeds', async () => {
    const r = await client.http.dispatch(`${base}/flaky`, { retryBackoff: 0.05 });
    const res = await r.get({ timeout: 15_000 });
    assert.equal(res.status, 200);
    assert.equal(res.body, 'done');
    assert.equal(hits.get('/flaky'), 3);
  });

  it('fails at once on 4xx (no retry)', async () => {
    const r = await client.http.dispatch(`${base}/missing`, { retryBackoff: 0.05 });
    const err = await r.get({ timeout: 10_000 }).catch((e: unknown) => e);
    assert.ok(err instanceof RemoteTaskError);
    assert.equal(err.name, 'HttpClientError');
    assert.match(err.message, /HTTP 404/);
    assert.equal(hits.get('/missing'), 1);
  });

  it('gives up after maxRetries on a persistent 5xx', async () => {
    const r = await client.http.dispatch(`${base}/broken`, { retryBackoff: 0.02, maxRetries: 2 });
    const err = await r.get({ timeout: 15_000 }).catch((e: unknown) => e);
    assert.ok(err instanceof RemoteTaskError);
    assert.equal(err.name, 'HttpRetryableError');
    assert.equal(hits.get('/broken'), 3);
  });

  it('cuts the body at httpMaxBodyBytes', async () => {
    const res = await (await client.http.dispatch(`${base}/big`)).get({ timeout: 10_000 });
    assert.equal(res.body.length, 1000);
    assert.equal(res.truncated, true);
  });

  it('refuses hosts outside the allowlist, and redirects to them', async () => {
    const direct = await (await client.http.dispatch('http://localhost:1/x')).get({ timeout: 10_000 }).catch((e: unknown) => e);
    assert.ok(direct instanceof RemoteTaskError);
    assert.equal(direct.name, 'HttpHostNotAllowedError');
    const redirected = await (await client.http.dispatch(`${base}/redirect-out`)).get({ timeout: 10_000 }).catch((e: unknown) => e);
    assert.ok(redirected instanceof RemoteTaskError);
    assert.equal(redirected.name, 'HttpHostNotAllowedError');
    const inside = await (await client.http.dispatch(`${base}/redirect-in`)).get({ timeout: 10_000 });
    assert.equal(inside.status, 200);
  });

  it('honours countdown', async () => {
    const seenBefore = hits.get('/ok') ?? 0;
    const r = await client.http.dispatch(`${base}/ok`, { countdown: 1 });
    await new Promise((res) => setTimeout(res, 500));
    assert.equal(hits.get('/ok') ?? 0, seenBefore, 'not called before its countdown');
    assert.equal((await r.get({ timeout: 10_000 })).status, 200);
  });

  it('a publish that cannot reach the broker fails fast with a clear error', async () => {
    // A regular file as the parent directory: the database cannot be created there.
    const bad = new Asynx({ brokerUrl: `sqlite://${join(tmp.dir, 'h.db')}/sub/x.db`, configFile: false });
    const t0 = Date.now();
    await assert.rejects(bad.http.dispatch(`${base}/ok`), (e: unknown) => e instanceof BrokerUnavailableError && /Cannot open the SQLite database/.test(e.message));
    assert.ok(Date.now() - t0 < 6000);
    await bad.close();
  });
});
