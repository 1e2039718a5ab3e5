// Typed events of the supervisor: the CLI renderer and API callers subscribe to these (style guide §6).

import { EventEmitter } from 'node:events';

/** A node and the pid multi is acting on. */
export interface NodePid {
  node: string;
  pid: number;
}

/** Outcome of starting one node. */
export interface StartResult {
  node: string;
  outcome: 'started' | 'alreadyRunning' | 'failed';
  /** The node's main pid when it is up; the pid that failed, when known. */
  pid: number | null;
  /** Why the node failed, from its own output (status `error`, logfile tail, launcher stderr). */
  reason?: string;
  pidfile: string;
  logfile: string;
  /** Wall time from spawn to confirmed up (or failure), ms. */
  elapsedMs: number;
}

/** Every event the supervisor emits, by name. Events about nodes are emitted in node order. */
export interface MultiEventMap {
  /** `start`: about to start nodes (`> Starting nodes...`). */
  'start:begin': { count: number };
  /** `start`/`restart`: the command line about to be spawned (shown with `--verbose`). */
  'node:spawn': { node: string; command: string[] };
  /** `start`: one node's outcome. */
  'node:start': StartResult;
  /** A pidfile whose pid is dead or reused was found (and removed unless another multi holds the lock). */
  'node:stale': {
    node: string; pidfile: string; pid: number | null; reason: string; removed: boolean;
    /** stop/stopwait/kill/restart: the pid was about to be signalled and was not (it is not this node). */
    notSignalled?: boolean;
  };
  /** `stop`/`stopwait`/`kill`/`restart`: the node has no live pid. */
  'node:down': { node: string };
  /** `stop`: at least one node will be signalled (`> Stopping nodes...`). */
  'stop:begin': { signal: NodeJS.Signals };
  /** A signal was sent to a node's main pid. */
  'node:signal': NodePid & { signal: NodeJS.Signals };
  /** TERM not sent again: the node is already shutting down warm (a second TERM would make it cold). */
  'node:signal:skipped': NodePid & { signal: NodeJS.Signals; state: string };
  /** A signal could not be delivered. */
  'node:signal:failed': NodePid & { signal: NodeJS.Signals; message: string };
  /** `stopwait`/`restart`: waiting for these nodes to exit. */
  'wait:begin': { nodes: NodePid[] };
  /** One liveness poll while waiting (a dot). */
  'wait:tick': { remaining: number };
  /** A node's main process has exited. */
  'node:gone': NodePid;
  /** `--kill-after` ran out: KILL sent. */
  'node:escalate': NodePid & { afterMs: number };
  /** `--timeout` ran out before a later `--kill-after`: these nodes are still alive; KILL follows at `killAfterMs`. */
  'wait:overdue': { nodes: NodePid[]; afterMs: number; killAfterMs: number };
  /** The wait gave up (`--timeout`, or 10 s after a KILL that did not take) with nodes still alive. */
  'wait:timeout': { nodes: NodePid[]; afterMs: number };
  /** `restart`: one node's outcome. */
  'node:restart': StartResult & { previousPid: number | null };
  /** `restart`: a node left alone because an earlier node failed to come back (keeps consumers running). */
  'node:skip': { node: string; reason: string };
  /** A dead node's status file recorded acks-early tasks it was running: FAILURE stored for `failed` (issue 9). */
  'node:settled': NodePid & { failed: string[]; errors: Array<{ id: string; message: string }> };
  /** `kill`: KILL about to be sent (Celery's `Sending KILL to node …`). */
  'node:kill': NodePid;
}

/** Names of {@link MultiEventMap} events. */
export type MultiEventName = keyof MultiEventMap;

/** Listeners by event name, for the programmatic API. */
export type MultiListeners = { [K in MultiEventName]?: (payload: MultiEventMap[K]) => void };

/** An EventEmitter whose `on`/`emit` are checked against {@link MultiEventMap}. */
export class MultiEvents {
  private readonly emitter = new EventEmitter();

  on<K extends MultiEventName>(name: K, listener: (payload: MultiEventMap[K]) => void): this {
    this.emitter.on(name, listener);
    return this;
  }

  off<K extends MultiEventName>(name: K, listener: (payload: MultiEventMap[K]) => void): this {
    this.emitter.off(name, listener);
    return this;
  }

  emit<K extends MultiEventName>(name: K, payload: MultiEventMap[K]): void {
    this.emitter.emit(name, payload);
  }

  /** Subscribes every listener of a {@link MultiListeners} object. */
  listen(listeners: MultiListeners): this {
    for (const [name, fn] of Object.entries(listeners)) if (fn !== undefined) this.emitter.on(name, fn as (p: unknown) => void);
    return this;
  }
}
