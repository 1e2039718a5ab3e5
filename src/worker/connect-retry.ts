// Connecting to the broker at start-up with retries (Celery's broker_connection_retry_on_startup), abortable by a stop.

import { setTimeout as sleep } from 'node:timers/promises';
import { AsynxError, ExitCode, isAsynxError } from '../errors.js';
import { backoffDelay, type BackoffPolicy } from '../util/backoff.js';

/** Delays between start-up connection attempts: 2 s, 4 s, 8 s, 16 s, then every 30 s. */
export const STARTUP_BACKOFF: BackoffPolicy = { base: 2_000, max: 30_000, jitter: 'none' };

/** How {@link connectWithRetry} retries. */
export interface StartupRetry {
  /** Retries after the first attempt; 0 fails at once. */
  retries: number;
  /** Give up once this long has passed since the first attempt (null: only `retries` bounds it). */
  maxWaitMs: number | null;
  /** Redacted broker URL, for the messages. */
  url: string;
  /** True for a failure worth retrying (the broker is down), false for one that will not heal (a bad URL). */
  canRetry: (err: unknown) => boolean;
  /** Called before each wait with the warning to log. */
  onRetry: (message: string, facts: { retry: number; retries: number; delayMs: number }) => void;
  /** A stop: ends the wait and the attempt in flight at once. */
  signal: AbortSignal;
  /** For tests. */
  delay?: (retry: number) => number;
}

/** The short reason of a connection failure: the socket error (`connect ECONNREFUSED 127.0.0.1:5999`) when known. */
export function connectReason(err: unknown): string {
  const cause = (err as { cause?: unknown } | null)?.cause;
  if (cause instanceof Error && cause.message) return cause.message;
  return err instanceof Error ? err.message : String(err);
}

/** Refusals that waiting does not cure: wrong user or password, a vhost that does not exist. */
const NOT_DOWN = /ACCESS[_-]REFUSED|NOT[_-]ALLOWED|\b403\b|\b530\b/i;

/** True when a start-up connection failure means the broker is down or unreachable (worth retrying). */
export function brokerDown(err: unknown): boolean {
  return isAsynxError(err) && err.code === 'asynx.broker.unavailable' && !NOT_DOWN.test(connectReason(err));
}

/** Resolves with `p`, or with `null` as soon as `signal` aborts (`p` is left to settle on its own). */
function unlessAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T | null> {
  if (signal.aborted) {
    p.catch(() => undefined);
    return Promise.resolve(null);
  }
  return new Promise<T | null>((resolve, reject) => {
    const onAbort = () => {
      p.catch(() => undefined);
      resolve(null);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/**
 * Runs `attempt` until it succeeds, retrying failures that `canRetry` accepts with {@link STARTUP_BACKOFF}.
 * Resolves to null when the stop signal aborted it. After the last retry, rejects with
 * `asynx.worker.brokerRetriesExhausted` (exit 69) saying what to do; a failure not worth retrying is rethrown.
 */
export async function connectWithRetry<T>(attempt: () => Promise<T>, opts: StartupRetry): Promise<T | null> {
  const started = Date.now();
  for (let retry = 0; ; retry++) {
    let err: unknown;
    try {
      return await unlessAborted(attempt(), opts.signal);
    } catch (e) {
      err = e;
    }
    if (opts.signal.aborted) return null;
    if (!opts.canRetry(err) || opts.retries === 0) throw err;
    const delayMs = opts.delay ? opts.delay(retry) : backoffDelay(STARTUP_BACKOFF, retry);
    const elapsed = Date.now() - started;
    const outOfTime = opts.maxWaitMs !== null && elapsed + delayMs > opts.maxWaitMs;
    if (retry >= opts.retries || outOfTime) {
      const tried = `${retry + 1} attempt${retry === 0 ? '' : 's'} over ${(elapsed / 1000).toFixed(1)} s`;
      throw new AsynxError(
        'asynx.worker.brokerRetriesExhausted',
        `Cannot connect to the broker ${opts.url} (${tried}): ${connectReason(err)}. Start the broker or fix its URL (--broker, ASYNX_BROKER_URL); to wait longer, raise --broker-retries (now ${opts.retries})`,
        { exitCode: ExitCode.unavailable, cause: err, facts: { value: opts.url, retries: opts.retries, ...(isAsynxError(err) ? { causeCode: err.code } : {}) } },
      );
    }
    opts.onRetry(`Cannot connect to the broker ${opts.url}: ${connectReason(err)}. Trying again in ${(delayMs / 1000).toFixed(2)} seconds... (${retry + 1}/${opts.retries})`, { retry: retry + 1, retries: opts.retries, delayMs });
    try {
      await sleep(delayMs, undefined, { signal: opts.signal });
    } catch {
      return null;
    }
  }
}
