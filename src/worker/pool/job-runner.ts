// Runs one job against an app's task table: shared by prefork children, thread children and the in-process pools.

import { encodeError, executeTask, type ExecHooks, type Outcome, type TaskDefinition } from '../../app/execute.js';
import { NotRegistered } from '../../errors.js';
import { loadApp } from '../load-app.js';
import { childOverrides } from './child-config.js';
import type { Job } from './ipc.js';

/** Task name → definition, as loaded from the app. */
export type TaskTable = ReadonlyMap<string, TaskDefinition>;

/**
 * Runs `job`: an unknown name fails with NotRegistered, a success whose value cannot be sent as JSON
 * fails with a TypeError (what a Celery client expects for a result it cannot serialise). Never throws.
 */
export async function runJob(tasks: TaskTable, job: Job, hooks: ExecHooks, abort: AbortController): Promise<Outcome> {
  const def = tasks.get(job.name);
  if (!def) return { kind: 'failure', error: encodeError(new NotRegistered(job.name, { taskId: job.id })) };
  const outcome = await executeTask(def, job, hooks, abort);
  if (outcome.kind !== 'success') return outcome;
  try {
    JSON.stringify(outcome.value);
    return outcome;
  } catch (err) {
    return { kind: 'failure', error: encodeError(new TypeError(`Task ${job.name} returned a value that is not JSON-serialisable: ${(err as Error).message}`)) };
  }
}

/** Imports the app module at `appUrl` with the CLI's overrides applied (as a pool child does) and returns its tasks. */
export async function loadTaskTable(appUrl: string, env: NodeJS.ProcessEnv = process.env): Promise<TaskTable> {
  const app = await loadApp(appUrl);
  app.configure(childOverrides(env));
  return new Map(app.taskNames().map((n) => [n, app.getTask(n)!]));
}
