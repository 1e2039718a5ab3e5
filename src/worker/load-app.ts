// Loads the user's app module (-A): a path or a package name whose `default` or `app` export is the app.

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Asynx } from '../app/app.js';
import { AsynxError, ExitCode, UsageError } from '../errors.js';

/** Resolves `-A` to an importable URL: a file path relative to `cwd`, else a package name. */
export function resolveAppModule(spec: string, cwd: string): string {
  const asPath = resolve(cwd, spec);
  if (existsSync(asPath)) return pathToFileURL(asPath).href;
  try {
    const req = createRequire(pathToFileURL(resolve(cwd, 'package.json')).href);
    return pathToFileURL(req.resolve(spec)).href;
  } catch {
    throw new UsageError('asynx.worker.appNotFound', `Cannot find the app module '${spec}' (looked for the file ${asPath} and for a package of that name): check -A/--app`, { option: '--app', value: spec });
  }
}

function isApp(v: unknown): v is Asynx {
  return v instanceof Asynx || (typeof v === 'object' && v !== null && typeof (v as Asynx).getTask === 'function' && typeof (v as Asynx).taskNames === 'function');
}

/** Imports the module and returns its app. `bust` forces a fresh import (HUP reload). */
export async function loadApp(url: string, bust?: number): Promise<Asynx> {
  let mod: Record<string, unknown>;
  try {
    mod = (await import(bust ? `${url}?reload=${bust}` : url)) as Record<string, unknown>;
  } catch (err) {
    throw new AsynxError('asynx.worker.appImportFailed', `Importing the app module ${url} failed: ${(err as Error).stack ?? String(err)}`, { exitCode: ExitCode.software, cause: err });
  }
  const app = isApp(mod.default) ? mod.default : isApp(mod.app) ? mod.app : null;
  if (!app) throw new UsageError('asynx.worker.noApp', `The module ${url} has no app: export it as \`export default app\` or \`export const app = new Asynx(...)\``, { value: url });
  return app;
}
