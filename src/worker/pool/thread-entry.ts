// Thread pool entry point: load the app in this worker thread, handshake, run one task at a time, exit when told.

import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { fromWire, type Job, type ParentMessage } from './ipc.js';
import { loadTaskTable, runJob, type TaskTable } from './job-runner.js';
import type { ThreadData, ThreadMessage } from './thread-ipc.js';

const port = parentPort;

function send(msg: ThreadMessage): void {
  port?.postMessage(msg);
}

/** This thread's V8 heap plus the memory its Buffers hold: both belong to this thread alone (RSS is the whole process's). */
function threadMemory(): number {
  const u = process.memoryUsage();
  return u.heapUsed + u.external;
}

async function main(): Promise<void> {
  const data = workerData as ThreadData | undefined;
  if (isMainThread || !port || !data?.appUrl) {
    process.stderr.write('asynx thread pool entry: started outside a worker thread; it is started by `asynx worker -P threads` only\n');
    return;
  }
  let tasks: TaskTable;
  try {
    // The thread's own env (given by the pool): it carries the CLI's config overrides.
    tasks = await loadTaskTable(data.appUrl, process.env);
  } catch (err) {
    send({ type: 'initFailed', error: (err as Error).message });
    return;
  }
  port.on('message', (m: ParentMessage) => {
    if (m.type === 'exit') process.exit(0);
    else if (m.type === 'run') void run(fromWire(m.job));
  });
  async function run(job: Job): Promise<void> {
    const abort = new AbortController();
    const outcome = await runJob(tasks, job, { updateState: async (state, meta) => send({ type: 'state', seq: job.seq, state, meta }) }, abort);
    send({ type: 'done', seq: job.seq, outcome, memory: data!.measureMemory ? threadMemory() : 0 });
  }
  send({ type: 'ready', pid: process.pid, tasks: [...tasks.keys()] });
}

void main();
