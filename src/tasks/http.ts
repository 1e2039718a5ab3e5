// Built-in task `asynx.http.dispatch`: make an HTTP request from a worker, retry network errors and 5xx.
// Two calling forms: one request object, or Celery 3's HttpDispatchTask form `args=[url, method]`,
// `kwargs=params` (query string for GET/HEAD/DELETE, form-encoded body otherwise).

import type { ResolvedConfig } from '../config.js';
import { AsynxError, UsageError } from '../errors.js';
import type { SendOptions } from '../app/call-options.js';
import type { TaskContext } from '../app/context.js';
import type { AsyncResult } from '../app/result.js';
import type { Task } from '../app/task.js';
import { backoffDelay } from '../util/backoff.js';
import { durationMs, type Duration } from '../util/duration.js';

/** The task's name, for `sendTask` from other languages. */
export const HTTP_TASK_NAME = 'asynx.http.dispatch';

/** A query or form parameter value; a list repeats the key. */
export type HttpParam = string | number | boolean | null | Array<string | number | boolean>;

/** One request, as the task receives it (JSON-safe). Durations: bare numbers are seconds. */
export interface HttpRequestSpec {
  /** An `http:` or `https:` URL. */
  url: string;
  /** A method token (GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS, or another RFC 7230 token). @defaultValue 'GET' (or 'POST' when a body is given) */
  method?: string;
  /** Query parameters appended to the URL. */
  params?: Record<string, HttpParam>;
  /** Form body, sent as application/x-www-form-urlencoded. */
  form?: Record<string, HttpParam>;
  /** JSON body; sets content-type application/json. */
  json?: unknown;
  /** Raw text body. */
  body?: string;
  headers?: Record<string, string>;
  /** Per-attempt timeout. @defaultValue 30 (seconds) */
  timeout?: Duration;
  /** Retries for network errors and 5xx. @defaultValue 5 */
  maxRetries?: number;
  /** Base of the exponential backoff. @defaultValue 1 (second) */
  retryBackoff?: Duration;
  /** Largest backoff delay. @defaultValue 60 (seconds) */
  retryBackoffMax?: Duration;
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
  /**
   * Sends `asynx.http.dispatch`; resolves to its AsyncResult once the broker holds the message.
   * The request is checked first: a bad URL, method, header or timeout is a {@link HttpBadRequestError}.
   */
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

/**
 * A request that cannot be made as given (bad URL, method, header, timeout, calling form). Thrown
 * by `app.http.dispatch()` before anything is sent; in a worker (a foreign client's message) the
 * task fails at once, without retries.
 */
export class HttpBadRequestError extends UsageError {
  constructor(option: string, value: unknown, expected: string) {
    const shown = typeof value === 'string' ? `'${value}'` : typeof value === 'object' && value !== null ? JSON.stringify(value) : String(value);
    super('asynx.http.badRequest', `${HTTP_TASK_NAME}: ${option} ${expected}, got ${shown}`, { task: HTTP_TASK_NAME, option, value });
    this.name = 'HttpBadRequestError';
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

/** A request with every field checked and defaults applied. */
interface CheckedRequest {
  url: URL;
  method: string;
  headers: Record<string, string>;
  body: string | undefined;
  timeoutMs: number;
  maxRetries: number;
  backoffBaseS: number;
  backoffMaxS: number;
}

/** RFC 7230 `token`; fetch() refuses CONNECT, TRACE and TRACK. */
const METHOD_TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const FORBIDDEN_METHODS = new Set(['CONNECT', 'TRACE', 'TRACK']);
/** Celery 3's HttpDispatch sent the parameters of these methods in the query string, others as a form. */
const QUERY_METHODS = new Set(['GET', 'HEAD', 'DELETE']);
const SPEC_KEYS = new Set(['url', 'method', 'params', 'form', 'json', 'body', 'headers', 'timeout', 'maxRetries', 'retryBackoff', 'retryBackoffMax']);

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function appendParams(target: URLSearchParams, params: unknown, option: string): void {
  if (params === undefined || params === null) return;
  if (!isRecord(params)) throw new HttpBadRequestError(option, params, 'must be an object of parameters');
  for (const [k, v] of Object.entries(params)) {
    for (const item of Array.isArray(v) ? v : [v]) {
      if (item !== null && typeof item === 'object') throw new HttpBadRequestError(`${option}.${k}`, item, 'must be a string, number, boolean or a list of them');
      target.append(k, item === null || item === undefined ? '' : String(item));
    }
  }
}

function seconds(option: string, value: unknown, dflt: number, positive: boolean): number {
  if (value === undefined || value === null) return dflt;
  let s: number;
  try {
    s = durationMs(value, option) / 1000;
  } catch {
    throw new HttpBadRequestError(option, value, "must be a duration: a number of seconds (30) or a string with a unit ('250ms', '30s')");
  }
  if (positive && !(s > 0)) throw new HttpBadRequestError(option, value, 'must be a positive duration');
  return s;
}

/** Checks a request spec; throws HttpBadRequestError naming the first bad field. */
export function checkRequest(spec: unknown): CheckedRequest {
  if (!isRecord(spec)) throw new HttpBadRequestError('request', spec, 'must be an object { url, method, ... }');
  for (const k of Object.keys(spec)) if (!SPEC_KEYS.has(k)) throw new HttpBadRequestError(k, spec[k], `is not a request option (known: ${[...SPEC_KEYS].join(', ')})`);
  let url: URL;
  try {
    url = new URL(String(spec.url));
  } catch {
    throw new HttpBadRequestError('url', spec.url, 'must be an absolute http:// or https:// URL');
  }
  if (typeof spec.url !== 'string' || (url.protocol !== 'http:' && url.protocol !== 'https:')) throw new HttpBadRequestError('url', spec.url, 'must be an absolute http:// or https:// URL');
  appendParams(url.searchParams, spec.params, 'params');
  const bodies = ['json', 'body', 'form'].filter((k) => spec[k] !== undefined);
  if (bodies.length > 1) throw new HttpBadRequestError(bodies[1]!, spec[bodies[1]!], `cannot be given with ${bodies[0]}: give one body`);
  const headers: Record<string, string> = {};
  if (spec.headers !== undefined && spec.headers !== null) {
    if (!isRecord(spec.headers)) throw new HttpBadRequestError('headers', spec.headers, 'must be an object of header names to strings');
    for (const [k, v] of Object.entries(spec.headers)) {
      if (typeof v !== 'string' || !METHOD_TOKEN.test(k) || /[\r\n\0]/.test(v)) throw new HttpBadRequestError(`headers.${k}`, v, 'must be a valid header name with a string value (no line breaks)');
      headers[k.toLowerCase()] = v;
    }
  }
  let body: string | undefined;
  if (spec.json !== undefined) {
    body = JSON.stringify(spec.json);
    headers['content-type'] ??= 'application/json';
  } else if (spec.form !== undefined) {
    const form = new URLSearchParams();
    appendParams(form, spec.form, 'form');
    body = form.toString();
    headers['content-type'] ??= 'application/x-www-form-urlencoded';
  } else if (spec.body !== undefined) {
    if (typeof spec.body !== 'string') throw new HttpBadRequestError('body', spec.body, 'must be a string (use json for objects)');
    body = spec.body;
  }
  const rawMethod = spec.method ?? (body !== undefined ? 'POST' : 'GET');
  if (typeof rawMethod !== 'string' || !METHOD_TOKEN.test(rawMethod) || FORBIDDEN_METHODS.has(rawMethod.toUpperCase())) {
    throw new HttpBadRequestError('method', rawMethod, 'must be an HTTP method such as GET, POST, PUT, PATCH, DELETE, HEAD or OPTIONS');
  }
  const method = rawMethod.toUpperCase();
  if (body !== undefined && (method === 'GET' || method === 'HEAD')) throw new HttpBadRequestError('method', rawMethod, 'cannot send a body: use POST/PUT/PATCH, or params for a query string');
  const maxRetries = spec.maxRetries ?? 5;
  if (typeof maxRetries !== 'number' || !Number.isInteger(maxRetries) || maxRetries < 0) throw new HttpBadRequestError('maxRetries', maxRetries, 'must be an integer ≥ 0');
  return {
    url,
    method,
    headers,
    body,
    timeoutMs: seconds('timeout', spec.timeout, 30, true) * 1000,
    maxRetries,
    backoffBaseS: seconds('retryBackoff', spec.retryBackoff, 1, false),
    backoffMaxS: seconds('retryBackoffMax', spec.retryBackoffMax, 60, false),
  };
}

/**
 * The request a task message asks for: `[spec]`, Celery 3's `[url, method?]` with the parameters
 * as kwargs, or kwargs alone `{url, method?, ...params}` (HttpDispatchTask.run's signature).
 */
export function requestFromCall(args: readonly unknown[], kwargs: Readonly<Record<string, unknown>>): HttpRequestSpec {
  const hasKwargs = Object.keys(kwargs).length > 0;
  if (args.length === 1 && isRecord(args[0])) {
    if (hasKwargs) throw new HttpBadRequestError('kwargs', kwargs, 'must be empty when the request is given as one object: put parameters in params or form');
    return args[0] as unknown as HttpRequestSpec;
  }
  let url: unknown;
  let method: unknown;
  let params: Record<string, unknown> = { ...kwargs };
  if (args.length === 0 && typeof kwargs.url === 'string') {
    ({ url, method, ...params } = kwargs);
  } else if (args.length >= 1 && args.length <= 2 && typeof args[0] === 'string') {
    [url, method] = args;
  } else {
    throw new HttpBadRequestError('args', args, 'must be [request] or [url, method] (with the parameters as kwargs)');
  }
  const m = method === undefined || method === null ? 'GET' : method;
  if (typeof m !== 'string') throw new HttpBadRequestError('method', m, 'must be an HTTP method such as GET or POST');
  const spec: HttpRequestSpec = { url: url as string, method: m };
  if (Object.keys(params).length) {
    if (QUERY_METHODS.has(m.toUpperCase())) spec.params = params as Record<string, HttpParam>;
    else spec.form = params as Record<string, HttpParam>;
  }
  return spec;
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

/** Makes one attempt; throws HttpBadRequestError / HttpRetryableError / HttpClientError / HttpHostNotAllowedError. */
export async function performRequest(spec: HttpRequestSpec | CheckedRequest, config: Pick<ResolvedConfig, 'httpAllowedHosts' | 'httpMaxBodyBytes'>, signal?: AbortSignal): Promise<HttpResponseResult> {
  const req = 'timeoutMs' in spec ? spec : checkRequest(spec);
  let url = req.url;
  checkHost(url, config.httpAllowedHosts);
  const headers = req.headers;
  let body = req.body;
  let method = req.method;
  const timeoutSignal = AbortSignal.timeout(req.timeoutMs);
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
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new HttpClientError(res.status, url.href, `redirect to unsupported protocol ${url.protocol}`);
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
    // Reads this.args / this.kwargs rather than its parameter: both calling forms arrive here.
    async function (this: TaskContext, _spec: HttpRequestSpec): Promise<HttpResponseResult> {
      // A foreign client's bad request fails here at once: HttpBadRequestError is never retried.
      const req = checkRequest(requestFromCall(this.args, this.kwargs));
      const config = await app.config();
      try {
        return await performRequest(req, config, this.signal);
      } catch (err) {
        if (err instanceof HttpRetryableError) {
          // Equal jitter: at least half the computed delay, so retries stay spread out.
          const countdown = backoffDelay({ base: req.backoffBaseS, max: req.backoffMaxS, jitter: 'equal' }, this.retries);
          this.retry({ error: err, countdown, maxRetries: req.maxRetries });
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
      const spec: HttpRequestSpec = { url, ...request };
      try {
        checkRequest(spec);
      } catch (err) {
        return Promise.reject(err);
      }
      return task.applyAsync({ args: [spec], countdown, eta, expires, priority, queue, taskId });
    },
  };
}
