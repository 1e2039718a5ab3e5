// The dashboard's browser checks, the same on every broker: a real worker, the dashboard, headless Chromium.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { Asynx, dashboard, type Dashboard } from '../../src/index.js';
import { type PageDocument, csrfToken, launchBrowser, nodeCell, openDashboard, screenshot, waitNode, waitTask } from './dashboard.js';
import { startWorker, type RunningWorker } from './worker.js';

declare const document: PageDocument;
declare const window: { loadMarker?: number; xss?: number };

/** `p`'s value, or 'still running' after `ms` (the timer never outlives the race). */
async function within<T>(p: Promise<T>, ms: number): Promise<T | 'still running'> {
  const ac = new AbortController();
  try {
    return await Promise.race([p, sleep(ms, 'still running' as const, { signal: ac.signal })]);
  } finally {
    ac.abort();
  }
}

/** GET `url` with a Host header of our choosing (fetch does not let a caller set Host). */
function statusWithHost(url: string, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { headers: { Host: host } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

/** What a suite needs: the broker, a temp dir, and a name for the asynx node. */
export interface SuiteContext {
  brokerUrl: () => string;
  dir: () => string;
  node: string;
}

/** Shared state the broker-specific tests of a file may use after the common ones. */
export interface SuiteHandles {
  page: () => Page;
  dash: () => Dashboard;
  client: () => Asynx;
  worker: () => RunningWorker;
}

/**
 * Registers the common tests in the current describe(): page loads, node online, a live task reaching SUCCESS,
 * an XSS payload shown as text, revoke from the page, CSRF and Origin refusals, a screenshot, and offline after stop.
 * `extra` runs between the common tests and the final one (the node going offline).
 */
export function dashboardSuite(ctx: SuiteContext, extra: (h: SuiteHandles) => void = () => {}): void {
  let worker: RunningWorker;
  let dash: Dashboard;
  let browser: Browser;
  let page: Page;
  let errors: string[];
  let client: Asynx;

  before(async () => {
    worker = await startWorker({ brokerUrl: ctx.brokerUrl(), args: ['-c', '2', '-E', '-n', ctx.node] });
    client = new Asynx({ brokerUrl: ctx.brokerUrl(), configFile: false, taskSendSentEvent: true });
    dash = await dashboard({ brokerUrl: ctx.brokerUrl(), cwd: ctx.dir(), port: 0, inspectInterval: 1, queueInterval: 0.5, auth: null, queues: ['dash.idle'] });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await dash?.close();
    await client?.close();
    if (worker && !worker.proc.exitCode && worker.proc.signalCode === null) await worker.stop('SIGTERM');
  });

  it('the page loads and the asynx node appears online with its pid and pool size', async () => {
    assert.match(dash.url!, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    ({ page, errors } = await openDashboard(browser, dash.url!));
    await waitNode(page, ctx.node, true);
    assert.equal(await nodeCell(page, ctx.node, 'PID'), String(worker.pid));
    await page.waitForFunction((h) => document.querySelector(`#workers tr[data-hostname="${h}"]`)?.children[4]?.textContent === '2', ctx.node, { timeout: 15_000 });
    assert.equal(await page.locator('#live').textContent(), 'live');
    assert.deepEqual(errors, []);
  });

  it('a task sent after the page loaded appears without a reload and reaches SUCCESS with its result and runtime', async () => {
    await page.evaluate(() => (window.loadMarker = 42));
    const r = await client.sendTask('t.add', [20, 22]);
    await waitTask(page, r.id, 'SUCCESS');
    const row = page.locator(`#tasks tr[data-uuid="${r.id}"]`);
    const cells = await row.locator('td').allTextContents();
    assert.equal(cells[2], 't.add');
    assert.equal(cells[3], '[20, 22]');
    assert.equal(cells[4], ctx.node);
    assert.equal(cells[7], '42');
    assert.match(cells[6]!, /\d+(\.\d+)? (ms|s)$/);
    assert.equal(await page.evaluate(() => window.loadMarker), 42, 'the page was not reloaded');
    // The outcomes chart counted it: the "succeeded (last min)" number is at least 1.
    assert.ok(Number(await page.locator('#sum-succeeded').textContent()) >= 1);
  });

  it('an XSS payload in args renders as text, in the list and in the detail pane', async () => {
    const img = '<img src=x onerror="window.xss=1">';
    const script = '<script>window.xss=2</script>';
    const r = await client.sendTask('t.add', [img, script]);
    await waitTask(page, r.id, 'SUCCESS');
    const row = page.locator(`#tasks tr[data-uuid="${r.id}"]`);
    const args = await row.locator('td').nth(3).textContent();
    assert.ok(args!.includes('<img src=x') && args!.includes('<script>'), `args shown as text: ${args}`);
    await row.click();
    await page.waitForSelector('#detail:not([hidden])');
    await page.waitForFunction(() => (document.querySelector('#detail-fields')?.textContent ?? '').includes('window.xss=2</script>'), null, { timeout: 5_000 });
    const injected = await page.evaluate(() => ({ elements: document.querySelectorAll('main img, main script, #detail img, #detail script').length, xss: window.xss ?? null }));
    assert.deepEqual(injected, { elements: 0, xss: null });
    await page.click('#detail-close');
  });

  it('revoke from the page ends a countdown task REVOKED (page and result backend)', async () => {
    const r = await client.sendTask('t.add', [1, 1], {}, { countdown: 3 });
    // task-sent (taskSendSentEvent) shows it at once, before any worker takes it.
    await page.waitForSelector(`#tasks tr[data-uuid="${r.id}"]`, { timeout: 15_000 });
    await page.click(`#tasks tr[data-uuid="${r.id}"]`);
    await page.waitForSelector('#btn-revoke:not([disabled])');
    await page.click('#btn-revoke');
    await page.waitForFunction(() => /revoke: /.test(document.getElementById('toast')?.textContent ?? ''), null, { timeout: 10_000 });
    await waitTask(page, r.id, 'REVOKED', 30_000);
    assert.equal(await r.state(), 'REVOKED');
    await page.click('#detail-close');
  });

  it('terminate from the page kills a running task, which ends REVOKED', async () => {
    const r = await client.sendTask('t.sleep', [60_000]);
    await waitTask(page, r.id, 'STARTED');
    await page.click(`#tasks tr[data-uuid="${r.id}"]`);
    await page.waitForSelector('#btn-terminate:not([disabled])');
    await page.click('#btn-terminate');
    await waitTask(page, r.id, 'REVOKED', 30_000);
    assert.equal(await r.state(), 'REVOKED');
    await page.click('#detail-close');
  });

  it('an action without the CSRF token, or from another origin, is refused', async () => {
    const url = dash.url!;
    const origin = url.replace(/\/$/, '');
    const noToken = await fetch(`${url}api/queues/celery/purge`, { method: 'POST', headers: { Origin: origin, 'Content-Type': 'application/json' }, body: '{}' });
    assert.equal(noToken.status, 403);
    const token = await csrfToken(url);
    const crossSite = await fetch(`${url}api/queues/celery/purge`, { method: 'POST', headers: { Origin: 'http://evil.example', 'X-CSRF-Token': token }, body: '{}' });
    assert.equal(crossSite.status, 403);
    const wrongToken = await fetch(`${url}api/queues/celery/purge`, { method: 'POST', headers: { Origin: origin, 'X-CSRF-Token': 'f'.repeat(64) }, body: '{}' });
    assert.equal(wrongToken.status, 403);
    // A GET cannot act, and a DNS-rebound Host is refused before anything else.
    assert.equal((await fetch(`${url}api/queues/celery/purge`)).status, 404);
    assert.equal(await statusWithHost(url, 'evil.example'), 421);
    assert.equal(await statusWithHost(url, `localhost:${new URL(url).port}`), 200);
    // With both, the same request goes through (so the refusals above were about the token and origin).
    const ok = await fetch(`${url}api/queues/celery/purge`, { method: 'POST', headers: { Origin: origin, 'X-CSRF-Token': token, 'Content-Type': 'application/json' }, body: '{}' });
    assert.equal(ok.status, 200, await ok.text());
  });

  it('a queue nobody consumes shows its length, and purge from the page empties it', async () => {
    for (let i = 0; i < 3; i++) await client.sendTask('t.add', [i, i], {}, { queue: 'dash.idle' });
    const cell = `#queues tr[data-queue="dash.idle"] td:nth-child(2)`;
    await page.waitForFunction((sel) => document.querySelector(sel)?.textContent === '3', cell, { timeout: 15_000 });
    await page.click('#queues tr[data-queue="dash.idle"] button[data-action="purge"]');
    await page.waitForFunction(() => /3 message\(s\) purged/.test(document.getElementById('toast')?.textContent ?? ''), null, { timeout: 10_000 });
    await page.waitForFunction((sel) => document.querySelector(sel)?.textContent === '0', cell, { timeout: 15_000 });
  });

  it('grow from the page adds a pool process (stats pool size 2 → 3)', async () => {
    await page.click(`#workers tr[data-hostname="${ctx.node}"] button[data-action="grow"]`);
    await page.waitForFunction((h) => document.querySelector(`#workers tr[data-hostname="${h}"]`)?.children[4]?.textContent === '3', ctx.node, { timeout: 15_000 });
    await page.click(`#workers tr[data-hostname="${ctx.node}"] button[data-action="shrink"]`);
    await page.waitForFunction((h) => document.querySelector(`#workers tr[data-hostname="${h}"]`)?.children[4]?.textContent === '2', ctx.node, { timeout: 15_000 });
  });

  extra({ page: () => page, dash: () => dash, client: () => client, worker: () => worker });

  it('a screenshot of the page is saved', async () => {
    // Some of each outcome, so the picture shows what the page is for.
    for (let i = 0; i < 5; i++) await client.sendTask('t.add', [i, 10 * i]);
    const retried = await client.sendTask('t.flaky', [1]);
    const failing = await client.sendTask('t.boom');
    await waitTask(page, failing.id, 'FAILURE');
    await waitTask(page, retried.id, 'SUCCESS');
    await page.waitForTimeout(600); // one SSE flush, so the charts include the failure
    const file = join(ctx.dir(), 'dashboard.png');
    await screenshot(page, file);
    assert.ok(existsSync(file));
  });

  it('the task list filters by state and name, and finds a task by id', async () => {
    const states = async () => new Set(await page.locator('#tasks tbody tr').evaluateAll((rows) => rows.map((r) => (r as unknown as { dataset: { state: string } }).dataset.state)));
    await page.selectOption('#filter-state', 'FAILURE');
    assert.deepEqual([...(await states())], ['FAILURE']);
    await page.selectOption('#filter-state', '');
    await page.fill('#filter-name', 't.flaky');
    const names = await page.locator('#tasks tbody tr td:nth-child(3)').allTextContents();
    assert.ok(names.length >= 1 && names.every((n) => n === 't.flaky'), names.join(','));
    await page.fill('#filter-name', '');
    const one = await client.sendTask('t.add', [7, 7]);
    await waitTask(page, one.id, 'SUCCESS');
    await page.fill('#search-id', one.id);
    assert.deepEqual(await page.locator('#tasks tbody tr').evaluateAll((rows) => rows.map((r) => (r as unknown as { dataset: { uuid: string } }).dataset.uuid)), [one.id]);
    await page.fill('#search-id', '');
  });

  it('shut down from the page stops the node warm (exit 0), and the page shows it offline', async () => {
    await page.click(`#workers tr[data-hostname="${ctx.node}"] button[data-action="shutdown"]`);
    assert.equal(await within(worker.exited, 30_000), 0, worker.output());
    await waitNode(page, ctx.node, false, 15_000);
    assert.deepEqual(errors, []);
  });
}
