// Benchmark tasks for asynx workers (`npm run bench`); bench/celery_app.py defines the same for Celery.
import { Asynx } from 'asynx';
import { appendFileSync, writeFileSync } from 'node:fs';

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
/** Result round trips. */
app.task('bench.add', (a, b) => a + b);

export default app;
