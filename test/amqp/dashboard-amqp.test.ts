// The web dashboard on a private RabbitMQ node, in headless Chromium: the common checks, and a Python Celery
// worker on the same broker shown beside the asynx one (queue lengths come from queue.declare, no management plugin).

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openControlClient } from '../../src/index.js';
import { celerySkip } from '../helpers/celery.js';
import { type PageDocument, chromiumSkip, nodeCell, screenshot, startCeleryWithHeartbeats, waitNode, waitTask } from '../helpers/dashboard.js';
import { dashboardSuite } from '../helpers/dashboard-suite.js';
import type { Spawned } from '../helpers/process.js';
import { rabbitSkip, startRabbit, type RabbitNode } from '../helpers/rabbitmq.js';
import { tempDir } from '../helpers/tmp.js';

declare const document: PageDocument;

/** The Celery worker's fatal line, or the end of its log. */
const crashOf = (p: Spawned): string => /^.*Unrecoverable error.*$/m.exec(p.output())?.[0] ?? p.output().slice(-800);

const skip = rabbitSkip() || chromiumSkip() || celerySkip();

describe('dashboard on RabbitMQ (headless Chromium)', { skip }, () => {
  const tmp = tempDir('asynx-dash-amqp-');
  let node: RabbitNode;
  let python: Spawned | null = null;
  before(async () => {
    node = await startRabbit();
    // The management plugin is off (enabled_plugins is empty): queue lengths must come from AMQP itself.
    assert.doesNotMatch(await node.ctl(['list_queues', 'name']), /Error/);
  });
  after(async () => {
    await python?.stop('SIGTERM', 10_000);
    await node?.dispose();
    tmp.cleanup();
  });

  dashboardSuite({ brokerUrl: () => node.url, dir: () => tmp.dir, node: 'dash-amqp@localhost' }, (h) => {
    it('a Python Celery worker on the same broker appears online as py-celery, and its task is shown', async () => {
      const page = h.page();
      python = await startCeleryWithHeartbeats(node.url, 'pyw@localhost', 'py');
      await waitNode(page, 'pyw@localhost', true, 20_000);
      assert.match(await nodeCell(page, 'pyw@localhost', 'Software'), /^py-celery 5\./);
      await page.waitForFunction(() => document.querySelector('#workers tr[data-hostname="pyw@localhost"]')?.children[9]?.textContent === 'py', null, { timeout: 15_000 });
      const r = await h.client().sendTask('add', [40, 2], {}, { queue: 'py' });
      await waitTask(page, r.id, 'SUCCESS');
      const cells = await page.locator(`#tasks tr[data-uuid="${r.id}"] td`).allTextContents();
      assert.equal(cells[4], 'pyw@localhost');
      assert.equal(cells[7], '42');
      // The picture for the README: both nodes online, some of each outcome.
      for (let i = 0; i < 4; i++) await h.client().sendTask('t.add', [i, 10 * i]);
      const retried = await h.client().sendTask('t.flaky', [1]);
      const failed = await h.client().sendTask('t.boom');
      await waitTask(page, failed.id, 'FAILURE');
      await waitTask(page, retried.id, 'SUCCESS');
      await page.waitForTimeout(600); // one SSE flush, so the charts include them
      await waitNode(page, 'pyw@localhost', true, 1_000);
      await screenshot(page, join(tmp.dir, 'dashboard-python.png'), { readme: true });
    });

    it('the Python Celery worker survives remote-control requests once the Lamport clock passes 127', async () => {
      // amqplib writes integers 128..32767 in header tables as 's' (RabbitMQ's signed short); py-amqp reads 's' as a
      // short string, fails to parse the whole header table and the Celery worker exits ("Unrecoverable error").
      // The dashboard polls every few seconds and adjusts its clock to the nodes' replies, so it gets there.
      const control = await openControlClient(node.url);
      try {
        for (let i = 0; i < 140; i++) await control.broadcast('ping', {}, { reply: false, destination: ['nobody@localhost'] });
        const replies = await control.broadcast('ping', {}, { destination: ['pyw@localhost'], timeoutMs: 3_000 });
        assert.deepEqual(replies, [{ 'pyw@localhost': { ok: 'pong' } }], crashOf(python!));
      } finally {
        await control.close();
      }
      assert.equal(python!.isDone(), false, crashOf(python!));
    });
  });
});
