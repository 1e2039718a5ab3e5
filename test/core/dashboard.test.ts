// The web dashboard on the SQLite broker, in headless Chromium: live nodes and tasks, actions, and its safety rules.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { dashboard, isAsynxError } from '../../src/index.js';
import { type PageDocument, chromiumSkip, csrfToken, launchBrowser, openDashboard } from '../helpers/dashboard.js';
import { dashboardSuite } from '../helpers/dashboard-suite.js';
import { tempDir } from '../helpers/tmp.js';
import { runCli } from '../helpers/worker.js';

declare const document: PageDocument;

const skip = chromiumSkip();

describe('dashboard on SQLite (headless Chromium)', { skip }, () => {
  const tmp = tempDir('asynx-dash-');
  const brokerUrl = `sqlite://${join(tmp.dir, 'broker.db')}`;
  after(() => tmp.cleanup());
  dashboardSuite({ brokerUrl: () => brokerUrl, dir: () => tmp.dir, node: 'dash1@localhost' });
});

describe('dashboard safety', { skip }, () => {
  const tmp = tempDir('asynx-dash-safe-');
  const brokerUrl = `sqlite://${join(tmp.dir, 'broker.db')}`;
  after(() => tmp.cleanup());

  it('a non-loopback address without credentials refuses to start (CLI exit 64, API UsageError), before touching the broker', async () => {
    const r = await runCli(['dashboard', '--address', '0.0.0.0', '-b', brokerUrl], { ASYNX_DASHBOARD_AUTH: '' }, 20_000, tmp.dir);
    assert.equal(r.code, 64, r.stderr);
    assert.match(r.stderr, /refuses to listen on 0\.0\.0\.0 without credentials/);
    await assert.rejects(dashboard({ brokerUrl, address: '192.0.2.1', auth: null }), (err: unknown) => isAsynxError(err) && err.code === 'asynx.dashboard.authRequired');
    const noValue = await runCli(['dashboard', '--auth', '-b', brokerUrl], { ASYNX_DASHBOARD_AUTH: '' }, 20_000, tmp.dir);
    assert.equal(noValue.code, 64);
    assert.match(noValue.stderr, /ASYNX_DASHBOARD_AUTH, which is not set/);
    await assert.rejects(dashboard({ brokerUrl, auth: 'nocolon' }), (err: unknown) => isAsynxError(err) && err.code === 'asynx.dashboard.badAuth');
  });

  it('basic auth and bearer tokens guard every request, the page included', async () => {
    const basic = await dashboard({ brokerUrl, cwd: tmp.dir, port: 0, auth: 'admin:s3cret pass' });
    try {
      const url = basic.url!;
      const denied = await fetch(url);
      assert.equal(denied.status, 401);
      assert.match(denied.headers.get('www-authenticate') ?? '', /^Basic /);
      assert.equal((await fetch(url, { headers: { Authorization: `Basic ${Buffer.from('admin:wrong').toString('base64')}` } })).status, 401);
      const auth = { Authorization: `Basic ${Buffer.from('admin:s3cret pass').toString('base64')}` };
      assert.equal((await fetch(url, { headers: auth })).status, 200);
      assert.equal((await fetch(`${url}api/snapshot`)).status, 401);
      assert.equal((await fetch(`${url}api/snapshot`, { headers: auth })).status, 200);
    } finally {
      await basic.close();
    }
    const bearer = await dashboard({ brokerUrl, cwd: tmp.dir, port: 0, auth: 'Bearer tok-0123456789' });
    try {
      const url = bearer.url!;
      assert.equal((await fetch(`${url}api/snapshot`)).status, 401);
      assert.equal((await fetch(`${url}api/snapshot`, { headers: { Authorization: 'Bearer tok-0123456789' } })).status, 200);
      // In a browser: /?token= once sets an HttpOnly cookie and the page then loads by itself.
      const browser = await launchBrowser();
      try {
        const { page, errors } = await openDashboard(browser, `${url}?token=tok-0123456789`);
        assert.equal(new URL(page.url()).search, '', 'the token is dropped from the address bar');
        assert.equal(await page.locator('#live').textContent(), 'live');
        assert.deepEqual(errors, []);
      } finally {
        await browser.close();
      }
    } finally {
      await bearer.close();
    }
  });

  it('read-only shows no action and refuses one even with the token and the right origin', async () => {
    const ro = await dashboard({ brokerUrl, cwd: tmp.dir, port: 0, readOnly: true, auth: null });
    const browser = await launchBrowser();
    try {
      const { page, errors } = await openDashboard(browser, ro.url!);
      assert.equal(await page.locator('#readonly-badge').isVisible(), true);
      assert.equal(await page.locator('#queues tr[data-queue="celery"]').count(), 1);
      const visibleButtons = await page.evaluate(() => Array.from(document.querySelectorAll('main button')).filter((b) => b.offsetParent !== null && b.id !== 'detail-close').length);
      assert.equal(visibleButtons, 0);
      const token = await csrfToken(ro.url!);
      const res = await fetch(`${ro.url}api/queues/celery/purge`, { method: 'POST', headers: { Origin: ro.url!.replace(/\/$/, ''), 'X-CSRF-Token': token }, body: '{}' });
      assert.equal(res.status, 403);
      assert.match(await res.text(), /read-only/);
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
      await ro.close();
    }
  });

  it('mounted in a host server, the page works under a path (and the bare path redirects to it)', async () => {
    const { createServer } = await import('node:http');
    const d = await dashboard({ brokerUrl, cwd: tmp.dir, listen: false });
    // A connect/express-style mount: strip the prefix, keep originalUrl.
    const server = createServer((req, res) => {
      if (!req.url!.startsWith('/ops/asynx')) return void res.writeHead(404).end('host app');
      (req as typeof req & { originalUrl: string }).originalUrl = req.url!;
      req.url = req.url!.slice('/ops/asynx'.length) || '/';
      d.handler(req, res);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    const browser = await launchBrowser();
    try {
      const bare = await fetch(`http://127.0.0.1:${port}/ops/asynx`, { redirect: 'manual' });
      assert.equal(bare.status, 308);
      const { page, errors } = await openDashboard(browser, `http://127.0.0.1:${port}/ops/asynx`);
      assert.equal(new URL(page.url()).pathname, '/ops/asynx/');
      assert.equal(await page.locator('#live').textContent(), 'live');
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await d.close();
    }
  });
});

describe('dashboard CLI', { skip }, () => {
  const tmp = tempDir('asynx-dash-cli-');
  after(() => tmp.cleanup());
  let url = '';
  let proc: import('../helpers/process.js').Spawned | null = null;

  before(async () => {
    const { spawnProcess } = await import('../helpers/process.js');
    const { BIN } = await import('../helpers/worker.js');
    const { waitFor } = await import('../helpers/tmp.js');
    proc = spawnProcess(process.execPath, [BIN, 'dashboard', '--port', '0', '-b', `sqlite://${join(tmp.dir, 'b.db')}`], { cwd: tmp.dir, env: { ...process.env, NO_COLOR: '1', ASYNX_DASHBOARD_AUTH: '' } });
    const line = await waitFor('dashboard url', () => proc!.isDone() || /asynx dashboard on (http:\S+)/.exec(proc!.output()), 20_000);
    assert.ok(line !== true, proc.output());
    url = (line as RegExpExecArray)[1]!;
  });
  after(async () => {
    await proc?.stop('SIGTERM');
  });

  it('serves on 127.0.0.1 and stops with exit 0 on SIGTERM', async () => {
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    assert.equal((await fetch(url)).status, 200);
    assert.equal(await proc!.stop('SIGTERM', 10_000), 0);
  });
});
