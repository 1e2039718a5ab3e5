// What the dashboard's buttons do: remote-control commands through the ControlClient, and purge through the transport.

import type { ControlClient } from '../control/client.js';
import type { Transport } from '../transports/transport.js';

/** The outcome of an action as the page shows it: the nodes' replies, or the count purged. */
export interface ActionResult {
  ok: boolean;
  /** Celery's reply list, `[{node: {ok: …} | {error: …}}]`. */
  replies?: Array<Record<string, unknown>>;
  purged?: number;
  error?: string;
}

/** Signals a terminate may send (Celery accepts these names). */
const SIGNALS = new Set(['SIGTERM', 'SIGKILL', 'SIGINT', 'SIGQUIT', 'SIGHUP', 'SIGUSR1', 'SIGUSR2']);

/** True when at least one reply is `{ok: …}` (and so none was an error everywhere). */
function anyOk(replies: Array<Record<string, unknown>>): boolean {
  return replies.some((r) => Object.values(r).some((a) => a !== null && typeof a === 'object' && 'ok' in a));
}

/** Runs actions; every method resolves (a failure is `{ ok: false, error }`), so the server maps nothing. */
export class DashboardActions {
  constructor(
    private readonly control: ControlClient,
    private readonly transport: Transport,
  ) {}

  /** `revoke` to every node (the task may be held for its countdown by any of them); `terminate` kills it if it runs. */
  async revoke(taskId: string, terminate: boolean, signal = 'SIGTERM'): Promise<ActionResult> {
    const sig = signal.toUpperCase().startsWith('SIG') ? signal.toUpperCase() : `SIG${signal.toUpperCase()}`;
    if (!SIGNALS.has(sig)) return { ok: false, error: `unknown signal ${JSON.stringify(signal)}` };
    return this.command('revoke', { task_id: taskId, terminate, signal: sig }, undefined);
  }

  /** `pool_grow` / `pool_shrink` by `n` on one node. */
  async pool(node: string, grow: boolean, n = 1): Promise<ActionResult> {
    if (!Number.isInteger(n) || n < 1 || n > 1000) return { ok: false, error: 'n must be a whole number 1..1000' };
    return this.command(grow ? 'pool_grow' : 'pool_shrink', { n }, [node]);
  }

  /** `shutdown` of one node (a warm shutdown: running tasks finish). */
  async shutdown(node: string): Promise<ActionResult> {
    return this.command('shutdown', {}, [node]);
  }

  /** Deletes the ready messages of one queue. */
  async purge(queue: string): Promise<ActionResult> {
    try {
      return { ok: true, purged: await this.transport.purge([queue]) };
    } catch (err) {
      return { ok: false, error: (err as Error).message };
    }
  }

  private async command(method: string, args: Record<string, unknown>, destination: string[] | undefined): Promise<ActionResult> {
    try {
      const replies = await this.control.broadcast(method, args, { timeoutMs: 1000, ...(destination ? { destination } : {}) });
      // `shutdown` may not answer (the node is going); Celery's own `control shutdown` says nothing either.
      if (replies.length === 0) return { ok: method === 'shutdown' || method === 'revoke', replies, ...(method === 'shutdown' || method === 'revoke' ? {} : { error: 'no node replied within 1 s' }) };
      return { ok: anyOk(replies), replies };
    } catch (err) {
      return { ok: false, error: (err as Error).message };
    }
  }
}
