// Issue 9, the worker's side: its running tasks on record, and settling those a killed predecessor left running.

import { unsettledTasks, type NodeStatus, type ResultTargetSpec, type RunningTask } from '../process/status-file.js';
import type { ResultBackend } from '../results/backend.js';
import { settleLostTasks, settleLostTasksAt } from '../results/settle-lost.js';
import { parseBackendUrl } from '../urls.js';
import type { WorkerEvents } from './events.js';
import { ignoresResult, type Pending } from './pending.js';

/** The result target as the status file records it: SQLite paths made absolute, the broker only when rpc:// needs it. */
export function resultsTargetOf(brokerUrl: string, resultBackend: string, cwd: string): ResultTargetSpec | null {
  const backend = parseBackendUrl(resultBackend, cwd);
  if (backend.kind === 'none') return null;
  if (backend.kind === 'sqlite') return { resultBackend: `sqlite://${backend.path}`, brokerUrl: `sqlite://${backend.path}` };
  return { resultBackend: backend.url, brokerUrl };
}

function sameTarget(a: ResultTargetSpec | null, b: ResultTargetSpec | null): boolean {
  return a !== null && b !== null && a.resultBackend === b.resultBackend && a.brokerUrl === b.brokerUrl;
}

/** What the status file records about running tasks, and the predecessor's tasks still to settle. */
export class LostTasks {
  /** Where this node's results go. */
  private target: ResultTargetSpec | null = null;
  private inherited: { pid: number; target: ResultTargetSpec | null; tasks: RunningTask[] } | null = null;

  constructor(private readonly events: WorkerEvents) {}

  /**
   * Takes over the acks-early tasks the status file found at start says were running. Only call it while holding
   * the pidfile: then the process that wrote that status is dead.
   */
  inherit(previous: NodeStatus | null): void {
    if (previous === null || previous.pid === process.pid) return;
    const tasks = unsettledTasks(previous);
    if (tasks.length > 0) this.inherited = { pid: previous.pid, target: previous.results ?? null, tasks };
  }

  /** True while some inherited task is not settled (the status file must then outlive this node). */
  get unsettled(): boolean {
    return this.inherited !== null;
  }

  /** Sets where this node's results go (once the config is known). */
  useTarget(brokerUrl: string, resultBackend: string, cwd: string): void {
    this.target = resultsTargetOf(brokerUrl, resultBackend, cwd);
  }

  /** The status file's `running` and `results`: running tasks that store a result, and the inherited ones. */
  record(active: readonly Pending[], acksLateDefault: boolean): { running?: RunningTask[]; results?: ResultTargetSpec } {
    const target = this.target ?? this.inherited?.target ?? null;
    if (target === null) return {};
    const running: RunningTask[] = active
      .filter((p) => !ignoresResult(p))
      .map((p) => ({ id: p.req.id, name: p.req.task, replyTo: p.req.replyTo, acksLate: p.def.options.acksLate ?? acksLateDefault, startedAt: p.startedAt }));
    if (this.inherited && sameTarget(this.inherited.target, target)) running.push(...this.inherited.tasks);
    return running.length > 0 ? { running, results: target } : {};
  }

  /**
   * Stores FAILURE (WorkerLostError) for the inherited tasks unless they have a ready state, through `backend`
   * (or the predecessor's own backend when it differs); what cannot be stored now stays on record.
   * `changed` is called after (to rewrite the status file). Never throws.
   */
  async settle(backend: ResultBackend, timeoutMs: number, changed: () => void): Promise<void> {
    const inherited = this.inherited;
    if (!inherited) return;
    const report = inherited.target === null || sameTarget(inherited.target, this.target)
      ? await settleLostTasks(backend, inherited.pid, inherited.tasks)
      : await settleLostTasksAt(inherited.target, inherited.pid, inherited.tasks, timeoutMs);
    for (const id of report.failed) {
      const t = inherited.tasks.find((x) => x.id === id);
      this.events.emit('worker:warning', { message: `Task ${t?.name ?? '?'}[${id}] was running when worker node pid ${inherited.pid} was killed: stored FAILURE (WorkerLostError)` });
    }
    for (const e of report.errors) this.events.emit('worker:error', { message: `Cannot store the FAILURE of task ${e.id}, left running by killed worker node pid ${inherited.pid}: ${e.message}; kept on record for the next start`, taskId: e.id });
    const keep = new Set(report.errors.map((e) => e.id));
    inherited.tasks = inherited.tasks.filter((t) => keep.has(t.id));
    if (inherited.tasks.length === 0) this.inherited = null;
    changed();
  }
}
