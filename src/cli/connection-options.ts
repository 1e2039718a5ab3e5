// The broker / result backend / config flags every command shares: declared once, turned into options once.
//
// Every command that talks to a broker calls `addConnectionOptions(cmd)` when it is declared and
// `connectionFromFlags(flags, cwd)` in its action, then `applyConnection(app, conn)` on the app it uses.
// A command that starts other processes (worker pool children, multi nodes) passes `conn.childEnv`
// in their environment, so they resolve the same broker, backend and config file.
//
//   const cmd = addConnectionOptions(program.command('purge'));
//   cmd.action((flags: ConnectionFlags) => {
//     const conn = connectionFromFlags(flags, io.cwd);
//     const app = applyConnection(new Asynx({ cwd: io.cwd }), conn);
//     spawn(bin, args, { env: { ...process.env, ...conn.childEnv } });
//   });

import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { Asynx } from '../app/app.js';
import type { AsynxOptions } from '../config.js';

/** The parsed flags, as commander names them. */
export interface ConnectionFlags {
  /** `-b, --broker <url>` */
  broker?: string;
  /** `--result-backend <url>` */
  resultBackend?: string;
  /** `--config <path>` */
  config?: string;
}

/** What the flags mean, resolved once. */
export interface Connection {
  /** Overrides for `app.configure()`: they win over the config file and the `ASYNX_*` environment. */
  overrides: AsynxOptions;
  /** Absolute path of the config file given with `--config`, or null to use the default lookup. */
  configFile: string | null;
  /** Environment a child process needs to see the same broker, backend and config file (only what was given). */
  childEnv: Record<string, string>;
}

/** Adds `-b/--broker`, `--result-backend` and `--config` to `cmd`; returns `cmd` for chaining. */
export function addConnectionOptions(cmd: Command): Command {
  return cmd
    .option('-b, --broker <url>', 'broker URL (sqlite://<path>, amqp://user:pass@host:port/vhost); overrides ASYNX_BROKER_URL and the config file')
    .option('--result-backend <url>', 'result backend URL (sqlite://<path>, rpc://, redis://host:port/db, none); overrides ASYNX_RESULT_BACKEND')
    .option('--config <path>', 'config file (default: ASYNX_CONFIG, else asynx.config.{mjs,js,json} in the working directory)');
}

/** Turns the parsed flags into overrides and a child environment. Relative `--config` paths are from `cwd`. */
export function connectionFromFlags(flags: ConnectionFlags, cwd: string): Connection {
  const overrides: AsynxOptions = {};
  const childEnv: Record<string, string> = {};
  if (flags.broker) {
    overrides.brokerUrl = flags.broker;
    childEnv.ASYNX_BROKER_URL = flags.broker;
  }
  if (flags.resultBackend) {
    overrides.resultBackend = flags.resultBackend;
    childEnv.ASYNX_RESULT_BACKEND = flags.resultBackend;
  }
  const configFile = flags.config ? resolve(cwd, flags.config) : null;
  if (configFile) childEnv.ASYNX_CONFIG = configFile;
  return { overrides, configFile, childEnv };
}

/**
 * Applies `conn` to `app` (before it connects) and returns the app. An app loaded from `-A` was built
 * by the user's module, so the config file can only reach it through `ASYNX_CONFIG`, which this sets in
 * `env` (the one place the CLI writes to the environment).
 * @param env the environment the app reads. @defaultValue process.env
 */
export function applyConnection<A extends Asynx>(app: A, conn: Connection, env: NodeJS.ProcessEnv = process.env): A {
  if (conn.configFile) env.ASYNX_CONFIG = conn.configFile;
  app.configure(conn.overrides);
  return app;
}
