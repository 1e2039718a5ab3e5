// The built-in HTTP dispatch task against a local HTTP server, run by a real worker.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Asynx, BrokerUnavailableError, HttpBadRequestError, RemoteTaskError, UsageError } from '../../src/index.js';
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
  /** What /echo saw, by the `tag` query parameter or form field. */
  const echoed: Array<{ method: string; search: string; contentType: string | null; body: string }> = [];

  before(async () => {
    server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      const count = (hits.get(url.pathname) ?? 0) + 1;
      hits.set(url.pathname, count);
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        if (url.pathname === '/echo') {
          echoed.push({ method: req.method ?? '', search: url.search, contentType: req.headers['content-type'] ?? null, body });
          res.writeHead(200, { 'content-type': 'text/plain' });
          res.end(`${req.method} ${url.search} ${body}`);
        } else if (url.pathname === '/ok') {
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
    const res = await r.get({ timeout: 10 });
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-type'], 'application/json');
    assert.deepEqual(JSON.parse(res.body), { method: 'POST', q: 'hi', body: { a: 1 }, auth: 'Bearer t' });
    assert.equal(res.truncated, false);
  });

  it('retries 5xx with backoff and succeeds', async () => {
    const r = await client.http.dispatch(`${base}/flaky`, { retryBackoff: 0.05 });
    const res = await r.get({ timeout: 15 });
    assert.equal(res.status, 200);
    assert.equal(res.body, 'done');
    assert.equal(hits.get('/flaky'), 3);
  });

  it('fails at once on 4xx (no retry)', async () => {
    const r = await client.http.dispatch(`${base}/missing`, { retryBackoff: 0.05 });
    const err = await r.get({ timeout: 10 }).catch((e: unknown) => e);
    assert.ok(err instanceof RemoteTaskError);
    assert.equal(err.name, 'HttpClientError');
    assert.match(err.message, /HTTP 404/);
    assert.equal(hits.get('/missing'), 1);
  });

  it('gives up after maxRetries on a persistent 5xx', async () => {
    const r = await client.http.dispatch(`${base}/broken`, { retryBackoff: 0.02, maxRetries: 2 });
    const err = await r.get({ timeout: 15 }).catch((e: unknown) => e);
    assert.ok(err instanceof RemoteTaskError);
    assert.equal(err.name, 'HttpRetryableError');
    assert.equal(hits.get('/broken'), 3);
  });

  it('cuts the body at httpMaxBodyBytes', async () => {
    const res = await (await client.http.dispatch(`${base}/big`)).get({ timeout: 10 });
    assert.equal(res.body.length, 1000);
    assert.equal(res.truncated, true);
  });

  it('refuses hosts outside the allowlist, and redirects to them', async () => {
    const direct = await (await client.http.dispatch('http://localhost:1/x')).get({ timeout: 10 }).catch((e: unknown) => e);
    assert.ok(direct instanceof RemoteTaskError);
    assert.equal(direct.name, 'HttpHostNotAllowedError');
    const redirected = await (await client.http.dispatch(`${base}/redirect-out`)).get({ timeout: 10 }).catch((e: unknown) => e);
    assert.ok(redirected instanceof RemoteTaskError);
    assert.equal(redirected.name, 'HttpHostNotAllowedError');
    const inside = await (await client.http.dispatch(`${base}/redirect-in`)).get({ timeout: 10 });
    assert.equal(inside.status, 200);
  });

  it('honours countdown', async () => {
    const seenBefore = hits.get('/ok') ?? 0;
    const r = await client.http.dispatch(`${base}/ok`, { countdown: 1 });
    await new Promise((res) => setTimeout(res, 500));
    assert.equal(hits.get('/ok') ?? 0, seenBefore, 'not called before its countdown');
    assert.equal((await r.get({ timeout: 10 })).status, 200);
  });

  it('a publish that cannot reach the broker fails fast with a clear error', async () => {
    // A regular file as the parent directory: the database cannot be created there.
    const bad = new Asynx({ brokerUrl: `sqlite://${join(tmp.dir, 'h.db')}/sub/x.db`, configFile: false });
    const t0 = Date.now();
    await assert.rejects(bad.http.dispatch(`${base}/ok`), (e: unknown) => e instanceof BrokerUnavailableError && /Cannot open the SQLite database/.test(e.message));
    assert.ok(Date.now() - t0 < 6000);
    await bad.close();
  });

  it("Celery 3's calling form via sendTask: args [url, 'GET'] with kwargs as the query string", async () => {
    const r = await client.sendTask<{ status: number; body: string }>('asynx.http.dispatch', [`${base}/echo`, 'GET'], { q: 'x', n: 2 });
    const res = await r.get({ timeout: 10 });
    assert.equal(res.status, 200);
    assert.equal(res.body, 'GET ?q=x&n=2 ');
    assert.deepEqual(echoed.at(-1), { method: 'GET', search: '?q=x&n=2', contentType: null, body: '' });
  });

  it("Celery 3's calling form via sendTask: args [url, 'POST'] sends kwargs form-encoded; [url] alone is a GET", async () => {
    const r = await client.sendTask<{ status: number }>('asynx.http.dispatch', [`${base}/echo`, 'POST'], { a: '1', b: 'two words' });
    assert.equal((await r.get({ timeout: 10 })).status, 200);
    assert.deepEqual(echoed.at(-1), { method: 'POST', search: '', contentType: 'application/x-www-form-urlencoded', body: 'a=1&b=two+words' });
    await (await client.sendTask('asynx.http.dispatch', [`${base}/echo`])).get({ timeout: 10 });
    assert.deepEqual(echoed.at(-1), { method: 'GET', search: '', contentType: null, body: '' });
    await (await client.sendTask('asynx.http.dispatch', [], { url: `${base}/echo`, method: 'DELETE', id: 7 })).get({ timeout: 10 });
    assert.deepEqual(echoed.at(-1), { method: 'DELETE', search: '?id=7', contentType: null, body: '' });
  });

  it('app.http.dispatch checks url, method, timeout and maxRetries at the call, naming the option', async () => {
    const bad = (option: string) => (e: unknown) => e instanceof HttpBadRequestError && e instanceof UsageError && e.code === 'asynx.http.badRequest' && e.facts.option === option && e.message.includes(option);
    await assert.rejects(client.http.dispatch('not a url'), bad('url'));
    await assert.rejects(client.http.dispatch('ftp://127.0.0.1/x'), bad('url'));
    await assert.rejects(client.http.dispatch(`${base}/ok`, { method: 'BAD METHOD' }), bad('method'));
    await assert.rejects(client.http.dispatch(`${base}/ok`, { method: 'TRACE' }), bad('method'));
    await assert.rejects(client.http.dispatch(`${base}/ok`, { timeout: 'abc' }), bad('timeout'));
    await assert.rejects(client.http.dispatch(`${base}/ok`, { maxRetries: -2 }), bad('maxRetries'));
    await assert.rejects(client.http.dispatch(`${base}/ok`, { headers: { 'bad header': 'x' } }), bad('headers.bad header'));
    await assert.rejects(client.http.dispatch(`${base}/ok`, { countdown: -5 }), (e: unknown) => e instanceof UsageError && e.code === 'asynx.call.badOption');
  });

  it('durations with units work in dispatch options', async () => {
    const seenBefore = hits.get('/ok') ?? 0;
    const r = await client.http.dispatch(`${base}/ok`, { countdown: '1s', timeout: '5s', retryBackoff: '50ms' });
    await new Promise((res) => setTimeout(res, 500));
    assert.equal(hits.get('/ok') ?? 0, seenBefore, 'not called before its countdown');
    assert.equal((await r.get({ timeout: '10s' })).status, 200);
  });

  it("a foreign client's bad request fails at once in the worker, without retries", async () => {
    const t0 = Date.now();
    for (const [args, option] of [
      [[{ url: `${base}/broken`, method: 'BAD METHOD' }], 'method'],
      [[{ url: 'not a url' }], 'url'],
      [[{ url: `${base}/broken`, timeout: 'abc' }], 'timeout'],
      [[42], 'args'],
    ] as const) {
      const err = await (await client.sendTask('asynx.http.dispatch', [...args])).get({ timeout: 10 }).catch((e: unknown) => e);
      assert.ok(err instanceof RemoteTaskError, String(err));
      assert.equal(err.name, 'HttpBadRequestError');
      assert.match(err.message, new RegExp(option));
    }
    assert.equal(hits.get('/broken') ?? 0, 3, 'no request made for the bad ones (3 from the maxRetries test)');
    assert.ok(Date.now() - t0 < 8_000, 'no backoff');
  });
});
