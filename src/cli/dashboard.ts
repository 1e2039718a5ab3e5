// `asynx dashboard`: serves the web dashboard until SIGINT / SIGTERM.

import type { Command } from 'commander';
import { Asynx } from '../app/app.js';
import { ExitCode, UsageError } from '../errors.js';
import { loadApp, resolveAppModule } from '../worker/load-app.js';
import { badNumberFlag } from './cli-errors.js';
import { addConnectionOptions, applyConnection, connectionFromFlags, type ConnectionFlags } from './connection-options.js';

/** Where `asynx dashboard` writes. */
export interface DashboardCliIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
  cwd: string;
}

interface DashboardFlags extends ConnectionFlags {
  app?: string;
  port?: string;
  address?: string;
  auth?: string | boolean;
  readOnly?: boolean;
  queues?: string;
}

/** `--auth` without a value and no ASYNX_DASHBOARD_AUTH to read. */
export function authEnvMissing(): UsageError {
  return new UsageError('asynx.cli.dashboardAuthEnv', "--auth reads the credentials from ASYNX_DASHBOARD_AUTH, which is not set: export ASYNX_DASHBOARD_AUTH='user:password' (or 'Bearer <token>')", { option: '--auth' });
}

const HELP = `
Serves one page that shows the cluster live (server-sent events): every node (online while its
heartbeats come: alive until last heartbeat + 2 x freq), pool size, running and processed tasks, load,
uptime and queues; the queues with their lengths; recent tasks with state, args, runtime, worker,
retries, result or traceback; charts of tasks per minute and of queue lengths. Actions: revoke /
terminate a task, grow / shrink a pool, shut a node down, purge a queue. Python Celery workers on the
same broker show up as well. Task events are turned on in the nodes every few seconds (enable_events).

Safe by default: it listens on 127.0.0.1; any other address needs --auth. Credentials come from
ASYNX_DASHBOARD_AUTH ('user:password' for basic auth, or 'Bearer <token>'), so they stay out of ps.
Actions are POSTs that need the page's CSRF token and the same origin; --read-only removes them.

Examples:
  $ asynx dashboard
  $ asynx dashboard --port 8080 --read-only
  $ export ASYNX_DASHBOARD_AUTH='admin:s3cret'
  $ asynx dashboard --address 0.0.0.0 --auth

Exit codes: 0 stopped by SIGINT/SIGTERM · 64 bad usage (also a non-loopback --address without --auth) ·
69 broker unavailable · 73 the port cannot be bound.`;

function portFlag(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < 0 || n > 65535) throw badNumberFlag('--port', value, 'a whole number 0..65535');
  return n;
}

/** Registers `asynx dashboard`. */
export function registerDashboardCommand(program: Command, run: (fn: () => Promise<number>) => void, io: DashboardCliIo): void {
  const cmd = addConnectionOptions(
    program
      .command('dashboard')
      .description('Serve the web dashboard: nodes, queues, tasks and charts, live, with actions')
      .option('-A, --app <module>', 'app module, for its config (broker URL, default queue)')
      .option('-p, --port <port>', 'TCP port (default 5555)')
      .option('--address <address>', 'address to listen on (default 127.0.0.1; anything else needs --auth)')
      .option('--auth [credentials]', "require credentials: 'user:password' or 'Bearer <token>' (default: read ASYNX_DASHBOARD_AUTH)")
      .option('--read-only', 'hide and refuse every action')
      .option('-Q, --queues <names>', 'comma-separated queues to count besides the default one and those the nodes consume'),
  );
  cmd.addHelpText('after', HELP).action((flags: DashboardFlags) =>
    run(async () => {
      const conn = connectionFromFlags(flags, io.cwd);
      const app = applyConnection(flags.app ? await loadApp(resolveAppModule(flags.app, io.cwd)) : new Asynx({ cwd: io.cwd }), conn);
      let auth: string | null = null;
      if (flags.auth === true) {
        auth = io.env.ASYNX_DASHBOARD_AUTH ?? '';
        if (auth === '') throw authEnvMissing();
      } else if (typeof flags.auth === 'string') auth = flags.auth;
      else auth = io.env.ASYNX_DASHBOARD_AUTH || null;
      const port = portFlag(flags.port);
      // Loaded here, so other commands do not pay for the web server.
      const { dashboard } = await import('../dashboard/index.js');
      const d = await dashboard({
        app,
        cwd: io.cwd,
        auth,
        ...(port !== undefined ? { port } : {}),
        ...(flags.address !== undefined ? { address: flags.address } : {}),
        readOnly: flags.readOnly === true,
        queues: flags.queues ? flags.queues.split(',').map((q) => q.trim()).filter((q) => q !== '') : [],
      });
      io.stdout.write(`asynx dashboard on ${d.url} (broker ${d.broker}${flags.readOnly ? ', read-only' : ''}${auth ? ', credentials required' : ''}) — Ctrl-C to stop\n`);
      await new Promise<void>((resolve) => {
        const stop = () => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          resolve();
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
      await d.close();
      await app.close();
      return ExitCode.ok;
    }),
  );
}
