// Benchmark tasks for asynx workers (`npm run bench`); bench/celery_app.py defines the same for Celery.
import { Asynx } from 'asynx';
import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { threadId } from 'node:worker_threads';

export const app = new Asynx({ configFile: false });

const now = () => performance.timeOrigin + performance.now();

/** The unit of throughput: does nothing, keeps no result. */
app.task('bench.noop', () => null, { ignoreResult: true });
/** Written after a batch: FIFO order means every earlier task has started. */
app.task('bench.mark', (path) => writeFileSync(path, String(now())), { ignoreResult: true });
/** Concurrency: sleeps `ms`. */
app.task('bench.sleep', (ms) => new Promise((r) => setTimeout(r, ms)), { ignoreResult: true });
/** Latency: records enqueue → start in ms (same clock: one machine). */
app.task('bench.stamp', (path, sentAt) => appendFileSync(path, `${now() - sentAt}\n`), { ignoreResult: true });
/** Soak: counts completions per process and thread in `<dir>/<pid>-<thread>` (flushed every 200 ms), so lost or doubled tasks show. */
let counted = 0;
let countFile = null;
const flushCount = () => {
  if (countFile) writeFileSync(countFile, String(counted));
};
app.task('bench.count', (dir) => {
  counted++;
  if (countFile === null) {
    countFile = join(dir, `${process.pid}-${threadId}`);
    setInterval(flushCount, 200).unref();
  }
}, { ignoreResult: true });
/** Result round trips. */
app.task('bench.add', (a, b) => a + b);

export default app;
