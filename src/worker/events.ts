// Typed events of a worker node: the log, the status file and (later) Celery event publishing subscribe to these.

import { EventEmitter } from 'node:events';
import type { NodeState } from '../process/status-file.js';

/** The worker lifecycle (style guide §7): `starting → running ⇄ draining → stopping → stopped`, or `failed`. */
export type WorkerState = NodeState;

/** What every task event names: the fields Celery's `task-*` events carry besides their own. */
export interface TaskEventBase {
  /** Celery's `uuid`. */
  taskId: string;
  /** Task name (`tasks.add`). */
  name: string;
  /** Node name of the worker, `name@host`. */
  hostname: string;
  /** ms since the epoch, when the event happened. */
  timestamp: number;
}

/** An exception as Celery events describe it (`exception` is the repr, `traceback` the text). */
export interface TaskException {
  /** Error class name, `TypeError`. */
  type: string;
  /** The error's message. */
  message: string;
  /** The traceback text, or null when there is none. */
  traceback: string | null;
}

/** A task as `task-received` describes it. */
export interface TaskReceived extends TaskEventBase {
  args: unknown[];
  kwargs: Record<string, unknown>;
  retries: number;
  /** ISO time, or null. */
  eta: string | null;
  /** ISO time, or null. */
  expires: string | null;
  rootId: string | null;
  parentId: string | null;
  queue: string;
  priority: number;
  /** How many times the broker delivered this message (1 on the first delivery). */
  deliveryCount: number;
}

/** Why a task failed, from the worker's point of view. */
export type FailureCause =
  /** The task raised. */
  | 'raised'
  /** The hard time limit killed its pool child. */
  | 'timeLimit'
  /** Its pool child died while it ran. */
  | 'workerLost';

/** Why a message was rejected (given back, or dead-lettered). */
export type RejectCause =
  /** Unregistered task name: dead-lettered. */
  | 'notRegistered'
  /** Delivered more than `maxDeliveries` times: dead-lettered. */
  | 'maxDeliveries'
  /** Its early ack failed before it ran: given back. */
  | 'ackFailed'
  /** Acks late and its pool child died: given back. */
  | 'workerLost'
  /** A cold shutdown terminated it: given back. */
  | 'coldShutdown';

/** A task named in a pool event. */
export interface TaskRef {
  taskId: string;
  name: string;
}

/** A snapshot of the node, as `worker-online` / `worker-heartbeat` / `worker-offline` carry it. */
export interface WorkerInfo {
  hostname: string;
  pid: number;
  timestamp: number;
  /** Heartbeat period, seconds (Celery's `freq`). */
  freq: number;
  /** Tasks running now. */
  active: number;
  /** Tasks finished since start. */
  processed: number;
  concurrency: number;
  queues: string[];
}

/** Every event a worker emits, by name (Celery's `task-*` / `worker-*` events are the model). */
export interface WorkerEventMap {
  /** A task message was accepted for this node (it may still wait for its eta). */
  'task:received': TaskReceived;
  /** A task was handed to a pool child. */
  'task:started': TaskEventBase & { /** Pid of the worker main process. */ pid: number };
  'task:succeeded': TaskEventBase & { result: unknown; /** Seconds. */ runtime: number };
  'task:failed': TaskEventBase & { exception: TaskException; runtime: number; cause: FailureCause; /** Hard limit, seconds (cause `timeLimit`). */ timeLimit?: number; /** How the child ended (cause `workerLost`). */ detail?: string };
  'task:retried': TaskEventBase & { exception: TaskException; /** Seconds until the retry runs. */ countdown: number };
  /** Not run: revoked by remote control, or expired. */
  'task:revoked': TaskEventBase & { terminated: boolean; signum: string | null; expired: boolean; /** ISO time (when expired). */ expires: string | null };
  'task:rejected': TaskEventBase & { requeue: boolean; cause: RejectCause; reason: string };
  /** A message that is not a valid task: dead-lettered (a FAILURE is stored when it has an id). */
  'message:invalid': { tag: string; queue: string; taskId: string | null; code: string; message: string; timestamp: number };
  /** Prefetched or eta-held messages given back to the broker (warm shutdown, pool restart). */
  'message:restored': { count: number };
  'worker:online': WorkerInfo & { broker: string; resultBackend: string; prefetch: number; /** The pool kind (`-P`). */ pool: string };
  'worker:heartbeat': WorkerInfo;
  'worker:offline': WorkerInfo;
  /** Every lifecycle transition. */
  'worker:state': { hostname: string; from: WorkerState; to: WorkerState; error?: string };
  /** A stop began. */
  'worker:shutdown': { hostname: string; mode: 'warm' | 'cold' };
  /** Something failed that the worker survives (a result write, a follow-up publish, a cleanup step). */
  'worker:error': { message: string; taskId?: string };
  /** Something the operator should know (a stale pidfile replaced, a status file that cannot be written). */
  'worker:warning': { message: string };
  /** HUP: the pool restart began (`phase: begin`) or finished (`done`). */
  'pool:restart': { hostname: string; phase: 'begin' | 'done' };
  /** A pool child finished its handshake. */
  'pool:child:up': { index: number; pid: number; /** Thread pool: the thread's id (its pid is the worker's). */ threadId?: number };
  'pool:child:exit': { index: number; pid: number; threadId?: number; detail: string; expected: boolean };
  /** A new child took the slot of one that exited. */
  'pool:child:replaced': { index: number; oldPid: number; newPid: number; oldThreadId?: number; newThreadId?: number };
  /** A child is retired after max tasks or memory. */
  'pool:child:recycle': { index: number; pid: number; threadId?: number; reason: string };
  /**
   * The worker's event loop was blocked for `blockedMs` (≥ the `loopLagWarn` threshold): heartbeats, acks,
   * remote control and every other in-flight task waited. `tasks`: the tasks on this loop meanwhile (async
   * and solo pools; empty for prefork and threads, whose tasks run elsewhere).
   */
  'pool:loop:blocked': { blockedMs: number; thresholdMs: number; pool: string; tasks: TaskRef[] };
  /**
   * In-process pools: a task was given up (`why`: hard time limit, terminate, cold shutdown) and its code
   * did not stop on its aborted signal; it keeps running in the worker process. `abandoned`: how many now.
   */
  'pool:task:abandoned': TaskRef & { pool: string; why: string; abandoned: number };
  /** The code of an abandoned task ended, `afterMs` after it was given up (its result was dropped). */
  'pool:task:ended': TaskRef & { pool: string; afterMs: number; abandoned: number };
  /**
   * In-process pools: an unhandled promise rejection or an uncaught exception in the worker process (task
   * code, most likely: `tasks` were on the loop lately). The worker keeps going.
   */
  'pool:uncaught': { origin: 'unhandledRejection' | 'uncaughtException'; type: string; message: string; traceback: string | null; tasks: TaskRef[] };
}

/** Names of {@link WorkerEventMap} events. */
export type WorkerEventName = keyof WorkerEventMap;

/** A listener of one event. */
export type WorkerListener<K extends WorkerEventName> = (payload: WorkerEventMap[K]) => void;

/** A small emitter checked against {@link WorkerEventMap}; a throwing listener never breaks the worker. */
export class WorkerEvents {
  private readonly emitter = new EventEmitter();

  constructor() {
    this.emitter.setMaxListeners(0);
  }

  /** Subscribes; returns a function that unsubscribes. */
  on<K extends WorkerEventName>(name: K, listener: WorkerListener<K>): () => void {
    this.emitter.on(name, listener);
    return () => this.off(name, listener);
  }

  off<K extends WorkerEventName>(name: K, listener: WorkerListener<K>): void {
    this.emitter.off(name, listener);
  }

  /** True when someone listens (lets the emitter skip building costly payloads). */
  has(name: WorkerEventName): boolean {
    return this.emitter.listenerCount(name) > 0;
  }

  emit<K extends WorkerEventName>(name: K, payload: WorkerEventMap[K]): void {
    for (const fn of this.emitter.listeners(name) as Array<WorkerListener<K>>) {
      try {
        fn(payload);
      } catch {
        // A subscriber's bug must not stop a task's bookkeeping.
      }
    }
  }
}
