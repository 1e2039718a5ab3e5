// The BullMQ peer's worker process for `npm run bench` (case 9): `node bullmq_worker.mjs <redis-url> <queue> <concurrency>`.
// Job names mirror bench/app.mjs: noop, sleep (data.ms), mark (writes data.path), stamp (appends enqueue → start ms).
import { appendFileSync, writeFileSync } from 'node:fs';
import { Worker } from 'bullmq';

const [url, queue, concurrency] = process.argv.slice(2);
const { hostname, port } = new URL(url);
const now = () => performance.timeOrigin + performance.now();

const worker = new Worker(
  queue,
  async (job) => {
    switch (job.name) {
      case 'noop':
        return null;
      case 'sleep':
        await new Promise((r) => setTimeout(r, job.data.ms));
        return null;
      case 'mark':
        writeFileSync(job.data.path, String(now()));
        return null;
      case 'stamp':
        appendFileSync(job.data.path, `${now() - job.data.sentAt}\n`);
        return null;
      default:
        throw new Error(`bullmq_worker: unknown job ${job.name}`);
    }
  },
  // Completed jobs are removed at once: asynx and Celery keep no result for these tasks either.
  { connection: { host: hostname, port: Number(port), maxRetriesPerRequest: null }, concurrency: Number(concurrency), removeOnComplete: { count: 0 }, removeOnFail: { count: 1000 } },
);
await worker.waitUntilReady();
process.stdout.write('ready\n');
const stop = () => void worker.close().finally(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
