// Loads the user's app module (-A): a path or a package name whose `default` or `app` export is the app.

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Asynx } from '../app/app.js';
import { AsynxError, errorMessage, ExitCode, UsageError } from '../errors.js';

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

/**
 * Where an import failed, as `file:line`: for a syntax error (which Node reports without a location when
 * the module is imported) `node --check` on the module names the line; otherwise the first stack frame
 * outside Node itself. Empty when neither says.
 */
function importFailureLocation(url: string, err: unknown): string {
  if (err instanceof SyntaxError && url.startsWith('file:')) {
    const check = spawnSync(process.execPath, ['--check', fileURLToPath(url)], { encoding: 'utf8', timeout: 10_000 });
    const first = (check.stderr ?? '').split('\n')[0] ?? '';
    if (/:\d+$/.test(first)) return first;
    return '';
  }
  const frame = ((err as Error)?.stack ?? '').split('\n').find((l) => /^\s+at .*file:\/\//.test(l) && !l.includes('/node_modules/asynx/') && !l.includes('/dist/worker/load-app.'));
  const m = frame ? /(file:\/\/[^\s)]+?):(\d+):\d+\)?$/.exec(frame) : null;
  return m ? `${fileURLToPath(m[1]!)}:${m[2]}` : '';
}

/** Imports the module and returns its app. `bust` forces a fresh import (HUP reload). */
export async function loadApp(url: string, bust?: number): Promise<Asynx> {
  let mod: Record<string, unknown>;
  try {
    mod = (await import(bust ? `${url}?reload=${bust}` : url)) as Record<string, unknown>;
  } catch (err) {
    const where = importFailureLocation(url, err);
    const kind = err instanceof Error ? err.name : 'Error';
    throw new AsynxError('asynx.worker.appImportFailed', `Importing the app module ${url} failed: ${kind}: ${errorMessage(err)}${where ? ` (at ${where})` : ''}: fix the module, or run with ASYNX_DEBUG=1 for the stack`, { exitCode: ExitCode.software, cause: err, facts: { path: url, where } });
  }
  const app = isApp(mod.default) ? mod.default : isApp(mod.app) ? mod.app : null;
  if (!app) throw new UsageError('asynx.worker.noApp', `The module ${url} has no app: export it as \`export default app\` or \`export const app = new Asynx(...)\``, { value: url });
  return app;
}
