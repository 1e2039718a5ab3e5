// The worker's bridge to Celery events: WorkerEventMap → worker-online/heartbeat/offline and task-* events.

import { loadavg } from 'node:os';
import type { ResolvedConfig } from '../config.js';
import { EventDispatcher } from '../events/dispatcher.js';
import { SOFTWARE_INFO } from '../events/event.js';
import { exceptionRepr, saferepr } from '../protocol/saferepr.js';
import { openEventSink } from '../events/open-sink.js';
import type { Transport } from '../transports/transport.js';
import type { TaskException, WorkerEvents, WorkerInfo } from './events.js';
import type { MonitorState } from './monitor.js';
import { signalName, signalNumber } from './control-shapes.js';

/** What the bridge reads from its worker. */
export interface CeleryEventsSource {
  events: WorkerEvents;
  monitor: MonitorState;
  hostname: string;
  /** The node's snapshot now (active, processed, freq). */
  info: () => WorkerInfo;
}

/** Celery's `load_average()`: the three load averages rounded up to two decimals. */
function loadAverage(): [number, number, number] {
  const [a = 0, b = 0, c = 0] = loadavg();
  const up = (x: number) => Math.ceil(x * 100) / 100;
  return [up(a), up(b), up(c)];
}

/** `exception` and `traceback` of task-failed / task-retried. */
function failureFields(e: TaskException): { exception: string; traceback: string } {
  return { exception: exceptionRepr(e.type, e.message), traceback: e.traceback ?? `${e.type}: ${e.message}` };
}

/**
 * Starts publishing this worker's Celery events on its broker. Worker events always (`worker-online`
 * when the worker is up, `worker-heartbeat` at each heartbeat, `worker-offline` at the returned stop);
 * task events while `monitor.taskEvents` is on. Installs `monitor.sendHeartbeat`. The returned function
 * sends `worker-offline`, flushes and closes; call it after the pool is closed.
 */
export async function startCeleryEvents(transport: Transport, config: ResolvedConfig, src: CeleryEventsSource): Promise<() => Promise<void>> {
  const sink = await openEventSink(transport, config.brokerUrl, { hostname: src.hostname, connectTimeoutMs: config.connectTimeoutMs });
  const d = new EventDispatcher(sink, { hostname: src.hostname, clock: src.monitor.clock });
  const { events, monitor } = src;
  const worker = (type: string, info: WorkerInfo, freq = info.freq): void =>
    d.send(type, { freq, active: info.active, processed: info.processed, loadavg: loadAverage(), ...SOFTWARE_INFO }, info.timestamp);
  // The fields are built only while task events are on: a repr of large args or results costs real time per task.
  const task = (type: string, fields: () => Record<string, unknown>, at: number): void => {
    if (monitor.taskEvents) d.send(type, fields(), at);
  };
  const off = [
    events.on('worker:online', (i) => worker('worker-online', i)),
    events.on('worker:heartbeat', (i) => worker('worker-heartbeat', i)),
    events.on('task:received', (t) =>
      task('task-received', () => ({ uuid: t.taskId, name: t.name, args: saferepr(t.args), kwargs: saferepr(t.kwargs), root_id: t.rootId, parent_id: t.parentId, retries: t.retries, eta: t.eta, expires: t.expires }), t.timestamp),
    ),
    events.on('task:started', (t) => task('task-started', () => ({ uuid: t.taskId }), t.timestamp)),
    events.on('task:succeeded', (t) => task('task-succeeded', () => ({ uuid: t.taskId, result: saferepr(t.result), runtime: t.runtime }), t.timestamp)),
    events.on('task:failed', (t) => task('task-failed', () => ({ uuid: t.taskId, ...failureFields(t.exception) }), t.timestamp)),
    events.on('task:retried', (t) => task('task-retried', () => ({ uuid: t.taskId, ...failureFields(t.exception) }), t.timestamp)),
    events.on('task:revoked', (t) => task('task-revoked', () => ({ uuid: t.taskId, terminated: t.terminated, signum: t.signum === null ? null : signalNumber(signalName(t.signum) ?? 'SIGTERM'), expired: t.expired }), t.timestamp)),
    events.on('task:rejected', (t) => task('task-rejected', () => ({ uuid: t.taskId, requeue: t.requeue }), t.timestamp)),
  ];
  monitor.sendHeartbeat = (freq = 5) => worker('worker-heartbeat', { ...src.info(), timestamp: Date.now() }, freq);
  let stopped: Promise<void> | null = null;
  return () => {
    stopped ??= (async () => {
      for (const f of off) f();
      monitor.sendHeartbeat = () => undefined;
      worker('worker-offline', { ...src.info(), timestamp: Date.now() });
      await d.close();
    })();
    return stopped;
  };
}
