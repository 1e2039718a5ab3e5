// The worker's log lines (Celery's wording), written by subscribing a Logger to the worker's events.

import { reprOf } from '../protocol/codec.js';
import type { WorkerEventMap, WorkerEvents } from './events.js';
import type { Logger } from './logger.js';
import { taskLabel } from './pending.js';

/** A pool slot as a log line names it: `child 1 (pid 42)` or, in the thread pool, `thread 1 (thread id 7)`. */
const who = (e: { index: number; pid: number; threadId?: number }): string => (e.threadId !== undefined ? `thread ${e.index} (thread id ${e.threadId})` : `child ${e.index} (pid ${e.pid})`);

/** Up to 5 task labels, then how many more. */
function taskList(tasks: ReadonlyArray<{ name: string; taskId: string }>): string {
  const shown = tasks.slice(0, 5).map(taskLabel).join(', ');
  return tasks.length > 5 ? `${shown} and ${tasks.length - 5} more` : shown;
}

/** The loop-lag warning: how long, who was on the loop, what to do. */
function loopBlockedLine(e: WorkerEventMap['pool:loop:blocked']): string {
  const secs = (e.blockedMs / 1000).toFixed(2);
  if (e.pool === 'async' || e.pool === 'solo') {
    const who = e.tasks.length ? ` while ${taskList(e.tasks)} ran on it` : '';
    return `The worker's event loop was blocked for at least ${secs}s${who}: heartbeats, acks, remote control and every other task waited. A task doing CPU-bound or synchronous work blocks the ${e.pool} pool: run such tasks with -P threads or -P prefork (or split the work with await)`;
  }
  return `The event loop of the worker main process was blocked for at least ${secs}s (with -P ${e.pool} no task code runs in it: a slow synchronous broker call or a very large message?): heartbeats, acks and remote control waited`;
}

/** Subscribes `log` to `events`; returns a function that unsubscribes every listener. */
export function subscribeLogger(events: WorkerEvents, log: Logger): () => void {
  const offs = [
    events.on('task:received', (e) => {
      if (log.enabled('info')) log.info(`Task ${taskLabel(e)} received${e.eta ? ` (eta ${e.eta})` : ''}`);
    }),
    events.on('task:revoked', (e) => {
      if (e.expired) log.info(`Discarding expired task ${taskLabel(e)} (expired ${e.expires}): REVOKED`);
      else log.info(`Discarding revoked task ${taskLabel(e)}: REVOKED`);
    }),
    events.on('task:rejected', (e) => {
      const name = taskLabel(e);
      switch (e.cause) {
        case 'notRegistered':
          return log.error(`Received unregistered task of type '${e.name}' (id ${e.taskId}): the message goes to the dead-letter queue`);
        case 'maxDeliveries':
          return log.error(`Task ${name} ${e.reason}; moving it to the dead-letter queue`);
        case 'ackFailed':
          return log.error(`Task ${name} not started: its early ack failed (${e.reason}); giving it back to the broker`);
        case 'workerLost':
          return log.error(`Pool child died running ${name} (${e.reason}): acks_late, so the message goes back to its queue`);
        case 'coldShutdown':
          return log.warn(`Cold shutdown: ${name} was terminated and goes back to its queue`);
      }
    }),
    events.on('message:invalid', (e) => log.error(`Received invalid message ${e.tag} on queue '${e.queue}': ${e.message}; moving it to the dead-letter queue`)),
    events.on('task:revoked', (e) => {
      if (e.terminated) log.info(`Terminated ${taskLabel(e)} (${e.signum}): revoked by remote control`);
      else log.info(`Discarding ${e.expired ? 'expired' : 'revoked'} task: ${taskLabel(e)}`);
    }),
    events.on('message:restored', (e) => log.info(`Restoring ${e.count} unacknowledged message(s)`)),
    events.on('task:succeeded', (e) => {
      // Built only when it will be written: at -l warning this line costs nothing per task.
      if (log.enabled('info')) log.info(`Task ${taskLabel(e)} succeeded in ${e.runtime.toFixed(3)}s: ${reprOf(e.result, 200)}`);
    }),
    events.on('task:retried', (e) => log.info(`Task ${taskLabel(e)} retry: retry in ${e.countdown.toFixed(3)}s: ${e.exception.type}: ${e.exception.message}`)),
    events.on('task:failed', (e) => {
      const name = taskLabel(e);
      if (e.cause === 'raised') log.error(`Task ${name} raised unexpected: ${e.exception.type}(${JSON.stringify(e.exception.message)}) after ${e.runtime.toFixed(3)}s`);
      else if (e.cause === 'timeLimit') log.error(`Hard time limit (${e.timeLimit}s) exceeded for ${name}: ${e.detail ?? 'its pool child was killed'}`);
      else log.error(`Task ${name} failed: WorkerLostError: pool child exited (${e.detail})`);
    }),
    events.on('worker:online', (e) => {
      log.info(`Connected to ${e.broker}; results: ${e.resultBackend}; queues: ${e.queues.join(', ')}; concurrency: ${e.concurrency} (${e.pool})`);
      log.info('ready.');
    }),
    events.on('worker:shutdown', (e) => log.info(`${e.mode === 'cold' ? 'Cold' : 'Warm'} shutdown (MainProcess)`)),
    events.on('worker:offline', (e) => log.info(`stopped (${e.processed} tasks processed).`)),
    events.on('worker:error', (e) => log.error(e.message)),
    events.on('worker:warning', (e) => log.warn(e.message)),
    events.on('pool:restart', (e) => log.info(e.phase === 'begin' ? `Restarting worker pool (${e.hostname}): warm drain, then new children` : 'restarted.')),
    events.on('pool:child:exit', (e) => {
      if (!e.expected) log.error(`Pool ${who(e)} exited unexpectedly: ${e.detail}; replacing it`);
    }),
    events.on('pool:child:recycle', (e) => log.info(`Recycling pool ${who(e)}: ${e.reason}`)),
    events.on('pool:loop:blocked', (e) => log.warn(loopBlockedLine(e))),
    events.on('pool:task:abandoned', (e) =>
      log.warn(`Task ${taskLabel(e)} could not be stopped (${e.why}): it ignored its aborted signal and its code keeps running in the worker process (${e.abandoned} such task(s) now, see inspect stats); its result will be dropped. Make the task stop on this.signal, or run it with -P threads or prefork, where it can be killed`),
    ),
    events.on('pool:task:ended', (e) => log.info(`The abandoned code of ${taskLabel(e)} ended ${(e.afterMs / 1000).toFixed(1)}s after it was given up; its result was dropped (${e.abandoned} abandoned task(s) left)`)),
    events.on('pool:uncaught', (e) => {
      const where = e.tasks.length ? `; tasks on the loop lately: ${taskList(e.tasks)}` : '';
      const what = e.origin === 'unhandledRejection' ? 'Unhandled promise rejection' : 'Uncaught exception';
      log.error(`${what} in the worker process: ${e.type}: ${e.message}${where}. The worker keeps going; await or .catch() every promise a task starts, and catch errors in its timers and callbacks${e.traceback ? `\n${e.traceback}` : ''}`);
    }),
  ];
  return () => {
    for (const off of offs) off();
  };
}
