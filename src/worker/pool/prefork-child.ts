// Pool child entry point: load the app, handshake, run one task at a time, exit when the parent is gone.

import { AsynxError, ExitCode } from '../../errors.js';
import { fromWire, type ChildMessage, type Job, type ParentMessage } from './ipc.js';
import { loadTaskTable, runJob, type TaskTable } from './job-runner.js';

// Signals sent to the whole process group (Ctrl-C, systemd control-group, supervisord stopasgroup)
// must not kill a running task: only the main process decides (multi-spec decision 10).
process.on('SIGTERM', () => undefined);
process.on('SIGINT', () => undefined);
process.on('SIGHUP', () => undefined);
process.on('SIGUSR2', () => undefined);

// RSS is measured after each task only when --max-memory-per-child needs it (about 10 µs a call).
const measureRss = process.env.ASYNX_CHILD_MEASURE_RSS === '1';
const rss = (): number => (measureRss ? process.memoryUsage().rss : 0);

function send(msg: ChildMessage): void {
  if (process.connected) process.send!(msg);
}

async function main(): Promise<void> {
  const appUrl = process.env.ASYNX_CHILD_APP;
  if (!appUrl || !process.send) {
    process.stderr.write('asynx pool child: started without an app module or IPC channel; it is started by `asynx worker` only\n');
    process.exit(ExitCode.usage);
  }
  let tasks: TaskTable;
  try {
    tasks = await loadTaskTable(appUrl);
  } catch (err) {
    send({ type: 'initFailed', error: (err as Error).message });
    setTimeout(() => process.exit(ExitCode.failure), 50);
    return;
  }
  let current: AbortController | null = null;
  process.on('disconnect', () => {
    current?.abort(new AsynxError('asynx.pool.parentGone', 'The worker main process went away: this pool child stops its task and exits; the broker redelivers unacknowledged messages', { facts: { pid: process.pid } }));
    process.exit(ExitCode.ok);
  });
  process.on('message', (raw: unknown) => {
    if (typeof raw !== 'object' || raw === null) return;
    const m = raw as ParentMessage;
    if (m.type === 'exit') {
      process.disconnect();
      return;
    }
    if (m.type === 'terminate') {
      // Take the signal's default action (death by that signal), as a Celery pool child would.
      process.removeAllListeners(m.signal);
      process.kill(process.pid, m.signal);
      return;
    }
    if (m.type === 'run') void run(fromWire(m.job));
  });
  async function run(job: Job): Promise<void> {
    current = new AbortController();
    const outcome = await runJob(tasks, job, { updateState: async (state, meta) => send({ type: 'state', seq: job.seq, state, meta }) }, current);
    current = null;
    send({ type: 'done', seq: job.seq, outcome, rss: rss() });
  }
  send({ type: 'ready', pid: process.pid, tasks: [...tasks.keys()] });
}

void main();
