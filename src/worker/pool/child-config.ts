// The CLI's config overrides, handed from the worker main process to its pool children through the env.

import type { AsynxOptions } from '../../config.js';
import { AsynxError, ExitCode } from '../../errors.js';

/** The variable holding the overrides as JSON (set by `asynx worker`, read by each pool child). */
export const CHILD_OVERRIDES_ENV = 'ASYNX_CHILD_OVERRIDES';

/** The overrides in `env`, or none. */
export function childOverrides(env: NodeJS.ProcessEnv = process.env): AsynxOptions {
  const raw = env[CHILD_OVERRIDES_ENV];
  if (!raw) return {};
  try {
    const parsed: unknown = JSON.parse(raw);
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) return parsed as AsynxOptions;
  } catch {
    // fall through
  }
  throw new AsynxError('asynx.pool.badOverrides', `${CHILD_OVERRIDES_ENV} is not a JSON object: it is set by asynx worker for its pool children, do not set it by hand`, { exitCode: ExitCode.software, facts: { value: raw } });
}
