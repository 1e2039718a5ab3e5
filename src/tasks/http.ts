// Built-in task `asynx.http.dispatch`: make an HTTP request from a worker, retry network errors and 5xx.

import type { ResolvedConfig } from '../config.js';
import { AsynxError } from '../errors.js';
import type { SendOptions } from '../protocol/codec.js';
import type { TaskContext } from '../app/context.js';
import type { AsyncResult } from '../app/result.js';
import type { Task } from '../app/task.js';
import { backoffDelay } from '../util/backoff.js';

/** The task's name, for `sendTask` from other languages. */
export const HTTP_TASK_NAME = 'asynx.http.dispatch';

/** One request, as the task receives it (JSON-safe). */
export interface HttpRequestSpec {
  url: string;
  /** @defaultValue 'GET' (or 'POST' when `json` is given) */
  method?: string;
  /** Query parameters appended to the URL. */
  params?: Record<string, string | number | boolean>;
  /** JSON body; sets content-type application/json. */
  json?: unknown;
  /** Raw text body. */
  body?: string;
  headers?: Record<string, string>;
  /** Per-attempt timeout, seconds. @defaultValue 30 */
  timeout?: number;
  /** Retries for network errors and 5xx. @defaultValue 5 */
  maxRetries?: number;
  /** Base of the exponential backoff, seconds. @defaultValue 1 */
  retryBackoff?: number;
  /** Largest backoff delay, seconds. @defaultValue 60 */
  retryBackoffMax?: number;
}

/** What the task stores as its result. */
export interface HttpResponseResult {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** True when the body was cut at `httpMaxBodyBytes`. */
  truncated: boolean;
  url: string;
}

/** Options of `app.http.dispatch()`: the request plus when/where to run it. */
export interface DispatchOptions extends Omit<HttpRequestSpec, 'url'>, Pick<SendOptions, 'countdown' | 'eta' | 'expires' | 'priority' | 'queue' | 'taskId'> {}

/** `app.http`. */
export interface HttpDispatcher {
  /** Sends `asynx.http.dispatch`; resolves to its AsyncResult once the broker holds the message. */
  dispatch(url: string, opts?: DispatchOptions): Promise<AsyncResult<HttpResponseResult>>;
  /** The registered task. */
  readonly task: Task<[HttpRequestSpec], HttpResponseResult>;
}

/** A response status or network failure worth another attempt. */
export class HttpRetryableError extends AsynxError {
  constructor(message: string, facts: Record<string, unknown> = {}) {
    super('asynx.http.retryable', message, { facts });
    this.name = 'HttpRetryableError';
  }
}

/** A 4xx response: the request itself is wrong, so it is not retried. */
export class HttpClientError extends AsynxError {
  constructor(status: number, url: string, body: string) {
    super('asynx.http.clientError', `HTTP ${status} from ${url}: ${body.slice(0, 200)}`, { facts: { status, url } });
    this.name = 'HttpClientError';
  }
}

/** The host is not in `httpAllowedHosts`. */
export class HttpHostNotAllowedError extends AsynxError {
  constructor(host: string, allowed: string[]) {
    super('asynx.http.hostNotAllowed', `Host '${host}' is not in httpAllowedHosts (${allowed.join(', ')}): add it to the config to allow requests to it`, { facts: { host } });
    this.name = 'HttpHostNotAllowedError';
  }
}

interface AppLike {
  task<A extends unknown[], R>(name: string, handler: (this: TaskContext, ...args: A) => R | Promise<R>, options?: object): Task<A, Awaited<R>>;
  config(): Promise<ResolvedConfig>;
}

function buildUrl(spec: HttpRequestSpec): URL {
  let url: URL;
  try {
    url = new URL(spec.url);
  } catch {
    throw new HttpClientError(0, String(spec.url), 'invalid URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new HttpClientError(0, spec.url, `unsupported protocol ${url.protocol}`);
  for (const [k, v] of Object.entries(spec.params ?? {})) url.searchParams.append(k, String(v));
  return url;
}

function checkHost(url: URL, allowed: string[] | null): void {
  if (allowed && !allowed.includes(url.hostname) && !allowed.includes(url.host)) throw new HttpHostNotAllowedError(url.host, allowed);
}

async function readCapped(res: Response, max: number): Promise<{ body: string; truncated: boolean }> {
  if (!res.body) return { body: '', truncated: false };
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  let truncated = false;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (size + value.byteLength > max) {
      chunks.push(value.subarray(0, max - size));
      size = max;
      truncated = true;
      await reader.cancel().catch(() => undefined);
      break;
    }
    chunks.push(value);
    size += value.byteLength;
  }
  return { body: Buffer.concat(chunks).toString('utf8'), truncated };
}

/** Makes one attempt; throws HttpRetryableError / HttpClientError / HttpHostNotAllowedError. */
export async function performRequest(spec: HttpRequestSpec, config: Pick<ResolvedConfig, 'httpAllowedHosts' | 'httpMaxBodyBytes'>, signal?: AbortSignal): Promise<HttpResponseResult> {
  let url = buildUrl(spec);
  checkHost(url, config.httpAllowedHosts);
  const headers: Record<string, string> = { ...(spec.headers ?? {}) };
  let body: string | undefined = spec.body;
  if (spec.json !== undefined) {
    body = JSON.stringify(spec.json);
    headers['content-type'] ??= 'application/json';
  }
  let method = (spec.method ?? (body !== undefined ? 'POST' : 'GET')).toUpperCase();
  const timeoutSignal = AbortSignal.timeout((spec.timeout ?? 30) * 1000);
  const combined = signal ? AbortSignal.any([signal, timeoutSignal]) : timeoutSignal;
  // Redirects are followed by hand so every hop is checked against the allowlist.
  for (let hop = 0; ; hop++) {
    let res: Response;
    try {
      res = await fetch(url, { method, headers, body: method === 'GET' || method === 'HEAD' ? undefined : body, redirect: 'manual', signal: combined });
    } catch (err) {
      if (signal?.aborted) throw signal.reason ?? err;
      const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).name;
      throw new HttpRetryableError(`Request to ${url.href} failed: ${cause} (${(err as Error).message})`, { url: url.href });
    }
    if (res.status >= 300 && res.status < 400 && res.headers.get('location')) {
      await res.body?.cancel().catch(() => undefined);
      if (hop >= 5) throw new HttpClientError(res.status, url.href, 'too many redirects');
      url = new URL(res.headers.get('location')!, url);
      checkHost(url, config.httpAllowedHosts);
      if (res.status === 303) {
        method = 'GET';
        body = undefined;
      }
      continue;
    }
    const { body: text, truncated } = await readCapped(res, config.httpMaxBodyBytes);
    if (res.status >= 500) throw new HttpRetryableError(`HTTP ${res.status} from ${url.href}`, { status: res.status, url: url.href });
    if (res.status >= 400) throw new HttpClientError(res.status, url.href, text);
    return { status: res.status, headers: Object.fromEntries(res.headers.entries()), body: text, truncated, url: url.href };
  }
}

/** Registers `asynx.http.dispatch` on an app and returns `app.http`. */
export function registerHttpTask(app: AppLike): HttpDispatcher {
  const task = app.task(
    HTTP_TASK_NAME,
    async function (this: TaskContext, spec: HttpRequestSpec): Promise<HttpResponseResult> {
      const config = await app.config();
      try {
        return await performRequest(spec, config, this.signal);
      } catch (err) {
        if (err instanceof HttpRetryableError) {
          // Equal jitter: at least half the computed delay, so retries stay spread out.
          const countdown = backoffDelay({ base: spec.retryBackoff ?? 1, max: spec.retryBackoffMax ?? 60, jitter: 'equal' }, this.retries);
          this.retry({ error: err, countdown, maxRetries: spec.maxRetries ?? 5 });
        }
        throw err;
      }
    },
    { maxRetries: null },
  );
  return {
    task,
    dispatch(url: string, opts: DispatchOptions = {}) {
      const { countdown, eta, expires, priority, queue, taskId, ...request } = opts;
      return task.applyAsync({ args: [{ url, ...request }], countdown, eta, expires, priority, queue, taskId });
    },
  };
}
