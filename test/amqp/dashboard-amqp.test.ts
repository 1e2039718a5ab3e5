// The web dashboard on a private RabbitMQ node, in headless Chromium: the common checks, and a Python Celery
// worker on the same broker shown beside the asynx one (queue lengths come from queue.declare, no management plugin).

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { celerySkip } from '../helpers/celery.js';
import { type PageDocument, chromiumSkip, nodeCell, startCeleryWithHeartbeats, waitNode, waitTask } from '../helpers/dashboard.js';
import { dashboardSuite } from '../helpers/dashboard-suite.js';
import type { Spawned } from '../helpers/process.js';
import { rabbitSkip, startRabbit, type RabbitNode } from '../helpers/rabbitmq.js';
import { tempDir } from '../helpers/tmp.js';

declare const document: PageDocument;

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
    });
  });
});
