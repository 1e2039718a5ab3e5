// Headless Chromium (Debian's, driven by playwright-core) on the dashboard page, plus the HTTP checks the page cannot make.

import { existsSync, statSync, copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { PYTHON, PY_FIXTURES } from './celery.js';
import { spawnProcess, type Spawned } from './process.js';
import { waitFor } from './tmp.js';

export const CHROMIUM = '/usr/bin/chromium';

/**
 * The few DOM shapes the page.evaluate callbacks use. Tests compile without lib "dom" (it would change the
 * types src/ sees), so a file that evaluates in the page declares `document` / `window` locally with these.
 */
export interface PageElement {
  textContent: string | null;
  id: string;
  offsetParent: unknown;
  children: ArrayLike<PageElement>;
}
export interface PageDocument {
  querySelector(selector: string): PageElement | null;
  querySelectorAll(selector: string): ArrayLike<PageElement>;
  getElementById(id: string): PageElement | null;
}
declare const document: PageDocument;
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The `skip` value for browser suites: a reason locally, a thrown error when CI is set (CI installs chromium). */
export function chromiumSkip(): string | false {
  if (existsSync(CHROMIUM)) return false;
  const why = `${CHROMIUM} is missing: apt-get install -y chromium`;
  if (process.env.CI) throw new Error(`CI=${process.env.CI} but ${why}`);
  return why;
}

/** Launches Chromium; nothing is downloaded. */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
}

/** A page on the dashboard, with its script errors collected; `accept` answers every confirm() dialog. */
export async function openDashboard(browser: Browser, url: string): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('dialog', (d) => void d.accept());
  await page.goto(url);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 15_000 });
  return { page, errors };
}

/** Waits until the node row of `hostname` shows `alive`. */
export async function waitNode(page: Page, hostname: string, alive: boolean, timeoutMs = 20_000): Promise<void> {
  await page.waitForSelector(`#workers tr[data-hostname="${hostname}"][data-alive="${alive}"]`, { timeout: timeoutMs });
}

/** Waits until the task row of `id` shows `state`. */
export async function waitTask(page: Page, id: string, state: string, timeoutMs = 20_000): Promise<void> {
  await page.waitForSelector(`#tasks tr[data-uuid="${id}"][data-state="${state}"]`, { timeout: timeoutMs });
}

/** The text of one cell of a node row (by column header). */
export async function nodeCell(page: Page, hostname: string, header: string): Promise<string> {
  return page.evaluate(
    ([h, col]) => {
      const heads = Array.from(document.querySelectorAll('#workers thead th')).map((th) => th.textContent);
      const i = heads.indexOf(col!);
      const row = document.querySelector(`#workers tr[data-hostname="${h}"]`);
      return row && i >= 0 ? (row.children[i]?.textContent ?? '') : '';
    },
    [hostname, header],
  );
}

/** The CSRF token the page is served with (as a same-origin script would read it). */
export async function csrfToken(url: string, headers: Record<string, string> = {}): Promise<string> {
  const html = await (await fetch(url, { headers })).text();
  const m = /<meta name="csrf-token" content="([0-9a-f]+)">/.exec(html);
  if (!m) throw new Error(`no csrf meta in the page:\n${html.slice(0, 500)}`);
  return m[1]!;
}

/** Saves a full-page screenshot to `file`; the README's one (`readme`) also goes to docs/dashboard.png with ASYNX_UPDATE_SCREENSHOT=1. */
export async function screenshot(page: Page, file: string, opts: { readme?: boolean } = {}): Promise<void> {
  await page.screenshot({ path: file, fullPage: true });
  if (statSync(file).size < 10_000) throw new Error(`screenshot ${file} is suspiciously small`);
  if (opts.readme && process.env.ASYNX_UPDATE_SCREENSHOT === '1') {
    const docs = join(ROOT, 'docs', 'dashboard.png');
    mkdirSync(dirname(docs), { recursive: true });
    copyFileSync(file, docs);
  }
}

/** A Python Celery worker that sends worker heartbeats (events), unlike test/helpers/celery.ts's, which turns them off. */
export async function startCeleryWithHeartbeats(brokerUrl: string, nodeName: string, queue: string): Promise<Spawned> {
  const env = { ...process.env, PYTHONPATH: PY_FIXTURES, BROKER_URL: brokerUrl, PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1' };
  const p = spawnProcess(PYTHON, ['-m', 'celery', '-A', 'capp', 'worker', '-l', 'info', '-n', nodeName, '-c', '1', '-P', 'solo', '--without-gossip', '--without-mingle', '-E', '-Q', queue], { cwd: PY_FIXTURES, env, group: true, reapChildren: true });
  try {
    await waitFor('Celery worker ready', () => p.isDone() || / ready\./.test(p.output()), 30_000);
  } catch (err) {
    await p.kill9().catch(() => undefined);
    throw err;
  }
  if (p.isDone()) throw new Error(`Celery worker exited:\n${p.output().slice(-2000)}`);
  return p;
}
