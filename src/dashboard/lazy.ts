// The public `dashboard()`: loads the dashboard (Hono, its server, its state) only when it is started.

import type { Dashboard, DashboardOptions } from './index.js';

/**
 * Starts the web dashboard; see the dashboard module for what it shows and how it is secured. The web
 * server is imported on the first call, not with `asynx` itself: every worker pool child imports the
 * user's app, and so the package index, and should not carry a web framework it never runs.
 *
 * @example
 * ```ts
 * import { Asynx, dashboard } from 'asynx';
 * const d = await dashboard({ app: new Asynx(), port: 5555 });   // http://127.0.0.1:5555/
 * await d.close();
 * ```
 * @throws UsageError `asynx.dashboard.authRequired` for a non-loopback address without `auth`; `asynx.dashboard.badAuth`
 * for credentials that are neither `user:password` nor `Bearer <token>`.
 * @throws BrokerUnavailableError when the broker cannot be reached within the connect timeout.
 * @throws AsynxError `asynx.dashboard.listen` (exit code 73) when the port cannot be bound.
 */
export async function dashboard(options: DashboardOptions = {}): Promise<Dashboard> {
  const { dashboard: start } = await import('./index.js');
  return start(options);
}

export type { Dashboard, DashboardOptions };
