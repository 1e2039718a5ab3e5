// A Python Celery client calls asynx.http.dispatch the Celery 3 way (args=[url, method], kwargs=params) on an asynx worker.

import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { celerySkip, pythonClient, type PyCall } from '../helpers/celery.js';
import { rabbitSkip, startRabbit, type RabbitNode } from '../helpers/rabbitmq.js';
import { startWorker, type RunningWorker } from '../helpers/worker.js';

const skip = rabbitSkip() || celerySkip();
const INTEROP_APP = fileURLToPath(new URL('../fixtures/interop-app.mjs', import.meta.url));

interface Seen {
  at: number;
  method: string;
  path: string;
  search: string;
  contentType: string | null;
  body: string;
}

describe('HTTP dispatch called from Python Celery, Celery 3 form', { skip }, () => {
  let node: RabbitNode;
  let worker: RunningWorker | null = null;
  let server: Server;
  let base = '';
  const seen: Seen[] = [];

  before(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        const url = new URL(req.url ?? '/', 'http://x');
        seen.push({ at: Date.now(), method: req.method ?? '', path: url.pathname, search: url.search, contentType: req.headers['content-type'] ?? null, body });
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(`${req.method} ${url.search} ${body}`);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    node = await startRabbit();
    worker = await startWorker({ brokerUrl: node.url, app: INTEROP_APP, args: ['-n', 'js-http@localhost', '-c', '2', '--result-backend', 'rpc://'], env: { ASYNX_RESULT_BACKEND: 'rpc://' } });
  });
  after(async () => {
    await worker?.stop('SIGTERM', 20_000).catch(() => undefined);
    await node?.dispose();
    await new Promise((r) => server.close(r));
  });

  test("send_task('asynx.http.dispatch', args=[url, 'GET'], kwargs=…, countdown=1) → query string; [url, 'POST'] → form body; results read in Python", { timeout: 120_000 }, async () => {
    const started = Date.now();
    const calls: PyCall[] = [
      { task: 'asynx.http.dispatch', args: [`${base}/get`, 'GET'], kwargs: { q: 'x', page: 2 }, options: { countdown: 1 } },
      { task: 'asynx.http.dispatch', args: [`${base}/post`, 'POST'], kwargs: { name: 'Ada Lovelace', n: 3 } },
      { task: 'asynx.http.dispatch', args: [`${base}/apply`, 'GET'], kwargs: { via: 'task' }, options: { countdown: 1 }, via: 'apply_async' } as PyCall,
      { task: 'asynx.http.dispatch', args: [`${base}/bad`, 'BAD METHOD'] },
    ];
    const out = await pythonClient(node.url, calls);

    const get = out[0]!.ok as { status: number; body: string; url: string };
    assert.equal(get.status, 200, JSON.stringify(out[0]));
    assert.equal(get.body, 'GET ?q=x&page=2 ');
    const getSeen = seen.find((s) => s.path === '/get')!;
    assert.equal(getSeen.search, '?q=x&page=2');
    assert.equal(getSeen.method, 'GET');
    assert.ok(getSeen.at - started >= 900, `countdown=1 honoured (called after ${getSeen.at - started} ms)`);
    assert.ok(out[0]!.elapsed >= 0.9);

    const post = out[1]!.ok as { status: number; body: string };
    assert.equal(post.status, 200, JSON.stringify(out[1]));
    const postSeen = seen.find((s) => s.path === '/post')!;
    assert.equal(postSeen.method, 'POST');
    assert.equal(postSeen.contentType, 'application/x-www-form-urlencoded');
    assert.equal(postSeen.body, 'name=Ada+Lovelace&n=3');
    assert.equal(postSeen.search, '');

    assert.equal((out[2]!.ok as { status: number }).status, 200, JSON.stringify(out[2]));
    assert.equal(seen.find((s) => s.path === '/apply')!.search, '?via=task');

    // A bad request from a foreign client fails at once (no retry), and Python sees the failure.
    assert.equal(out[3]!.state, 'FAILURE', JSON.stringify(out[3]));
    assert.equal(out[3]!.error, 'HttpBadRequestError');
    assert.match(out[3]!.message ?? '', /method/);
    assert.equal(seen.filter((s) => s.path === '/bad').length, 0);
  });
});
