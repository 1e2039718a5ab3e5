// Celery protocol v2 codec: call options → wire message, wire message → validated request. Pure.

import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { ProtocolError, RemoteTaskError, type ErrorFacts } from '../errors.js';
import {
  JSON_CONTENT_TYPE,
  type EncodedException,
  type Embed,
  type Signature,
  type TaskHeaders,
  type WireMessage,
} from './message.js';
import { saferepr } from './saferepr.js';

/**
 * What a message is built from: checked options, durations as numbers of seconds, as on Celery's wire.
 * Callers' options (durations with units, one link) are checked first by src/app/call-options.ts.
 */
export interface MessageOptions {
  taskId?: string;
  /** Seconds from now before the task may run. */
  countdown?: number;
  /** Earliest run time. */
  eta?: Date | string;
  /** Seconds from now, or an absolute time, after which the task is revoked instead of run. */
  expires?: number | Date | string;
  /** 0..255, higher runs first. */
  priority?: number;
  queue?: string;
  /** Retries already done (normally 0). */
  retries?: number;
  /** Hard time limit for this call, seconds. */
  timeLimit?: number;
  /** Soft time limit for this call, seconds. */
  softTimeLimit?: number;
  ignoreResult?: boolean;
  parentId?: string | null;
  rootId?: string | null;
  group?: string | null;
  groupIndex?: number | null;
  shadow?: string | null;
  replyTo?: string;
  /** Signatures to call with the result on success (Celery `link`). */
  link?: Signature[];
  /** Signatures to call on failure (Celery `link_error`). */
  linkError?: Signature[];
  /** Remaining chain steps, in Celery order (the next step is the last element). */
  chain?: Signature[];
  /** The chord body this task is a header member of (`embed.chord`). */
  chord?: Record<string, unknown> | null;
}

/** A validated task request, decoded from a wire message. */
export interface TaskRequest {
  id: string;
  task: string;
  args: unknown[];
  kwargs: Record<string, unknown>;
  embed: Embed;
  retries: number;
  /** Epoch ms, or null. */
  eta: number | null;
  /** Epoch ms, or null. */
  expires: number | null;
  timeLimit: number | null;
  softTimeLimit: number | null;
  rootId: string;
  parentId: string | null;
  group: string | null;
  groupIndex: number | null;
  ignoreResult: boolean;
  replyTo: string | null;
  priority: number;
  origin: string;
  shadow: string | null;
  headers: TaskHeaders;
}

const EMPTY_EMBED: Embed = { callbacks: null, errbacks: null, chain: null, chord: null };

/** Celery's timestamp form: ISO-8601 with microseconds and an explicit `+00:00` offset. */
export function formatCeleryTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000+00:00');
}

/** Parses an ISO-8601 time (with or without offset; no offset means UTC) to epoch ms. */
function badHeader(header: string, value: unknown, problem: string, facts: ErrorFacts = {}): ProtocolError {
  return new ProtocolError('asynx.protocol.badHeader', `Header '${header}' ${problem}`, { ...facts, option: header, value });
}

function badBody(problem: string, facts: ErrorFacts = {}): ProtocolError {
  return new ProtocolError('asynx.protocol.badBody', problem, facts);
}

/** The transport could not read the broker's item as a message at all (`detail` says why, Delivery.malformed). */
export function badEnvelope(detail: string, facts: ErrorFacts = {}): ProtocolError {
  return new ProtocolError('asynx.protocol.badEnvelope', `Cannot read the message: ${detail}; publish tasks with a Celery (kombu) or asynx client`, facts);
}

function badTime(option: string, value: unknown, problem: string): ProtocolError {
  return new ProtocolError('asynx.protocol.badTime', `'${option}' ${problem}`, { option, value });
}

export function parseCeleryTime(value: string, header: string): number {
  let text = value.trim();
  // Python writes microseconds; Date.parse accepts only milliseconds.
  text = text.replace(/(\.\d{3})\d+/, '$1');
  if (!/(Z|[+-]\d\d:?\d\d)$/i.test(text)) text += 'Z';
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) throw badTime(header, value, `is not an ISO-8601 time: ${JSON.stringify(value)}`);
  return ms;
}

function toMs(value: Date | string, what: string): number {
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) throw badTime(what, String(value), 'is an invalid Date');
    return value.getTime();
  }
  if (typeof value !== 'string') throw badTime(what, value, `must be an ISO-8601 time, got ${typeof value}`);
  return parseCeleryTime(value, what);
}

/** Message fields come checked from the app; anything else reaching here came from a received message. */
function finiteSeconds(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new ProtocolError('asynx.protocol.badOption', `'${what}' must be a number of seconds, got ${JSON.stringify(value)}`, { option: what, value });
  return value;
}

/** AMQP priority is an octet: an integer 0..255. */
function checkPriority(priority: unknown, taskId?: string): number {
  if (typeof priority !== 'number' || !Number.isInteger(priority) || priority < 0 || priority > 255) {
    throw new ProtocolError('asynx.protocol.badPriority', `Message priority must be an integer 0..255, got ${JSON.stringify(priority)}`, { option: 'priority', value: priority, ...(taskId ? { taskId } : {}) });
  }
  return priority;
}

/** `argsrepr` / `kwargsrepr`: Python's repr, bounded like Celery's (`saferepr`), so Python tools show them as Celery's own. */
export function reprOf(value: unknown, max = 1024): string {
  return saferepr(value, max);
}

/** `gen<pid>@<host>`, as Celery writes `origin`. */
export function defaultOrigin(): string {
  return `gen${process.pid}@${hostname()}`;
}

/**
 * Builds the v2 message for one call. `now` is injectable for tests.
 * Returns the queue to route to and the message.
 */
export function buildTaskMessage(
  task: string,
  args: unknown[],
  kwargs: Record<string, unknown>,
  opts: MessageOptions & { defaultQueue?: string; origin?: string; now?: number } = {},
): { queue: string; message: WireMessage } {
  const now = opts.now ?? Date.now();
  const id = opts.taskId ?? randomUUID();
  let etaMs: number | null = null;
  if (opts.countdown !== undefined && opts.countdown !== null) etaMs = now + finiteSeconds(opts.countdown, 'countdown') * 1000;
  else if (opts.eta !== undefined && opts.eta !== null) etaMs = toMs(opts.eta, 'eta');
  let expiresMs: number | null = null;
  if (typeof opts.expires === 'number') expiresMs = now + finiteSeconds(opts.expires, 'expires') * 1000;
  else if (opts.expires !== undefined && opts.expires !== null) expiresMs = toMs(opts.expires, 'expires');
  const priority = checkPriority(opts.priority ?? 0);
  const queue = opts.queue ?? opts.defaultQueue ?? 'celery';
  const timeLimit = opts.timeLimit ?? null;
  const softTimeLimit = opts.softTimeLimit ?? null;
  // Celery's defaults stay off the wire (see TaskHeaders): a third fewer header fields to encode and route.
  // Filled in Celery's key order.
  const h: Record<string, unknown> = { lang: 'js', task, id };
  if (opts.shadow) h.shadow = opts.shadow;
  if (etaMs !== null) h.eta = formatCeleryTime(etaMs);
  if (expiresMs !== null) h.expires = formatCeleryTime(expiresMs);
  if (opts.group) h.group = opts.group;
  if (opts.groupIndex !== undefined && opts.groupIndex !== null) h.group_index = opts.groupIndex;
  if (opts.retries) h.retries = opts.retries;
  if (timeLimit !== null || softTimeLimit !== null) h.timelimit = [timeLimit, softTimeLimit];
  h.root_id = opts.rootId ?? id;
  if (opts.parentId) h.parent_id = opts.parentId;
  h.argsrepr = reprOf(args);
  h.kwargsrepr = reprOf(kwargs);
  h.origin = opts.origin ?? defaultOrigin();
  if (opts.ignoreResult) h.ignore_result = true;
  const headers = h as TaskHeaders;
  const embed: Embed = {
    callbacks: opts.link && opts.link.length ? opts.link : null,
    errbacks: opts.linkError && opts.linkError.length ? opts.linkError : null,
    chain: opts.chain && opts.chain.length ? opts.chain : null,
    chord: opts.chord ?? null,
  };
  const message: WireMessage = {
    properties: {
      content_type: JSON_CONTENT_TYPE,
      content_encoding: 'utf-8',
      delivery_mode: 2,
      priority,
      correlation_id: id,
      ...(opts.replyTo ? { reply_to: opts.replyTo } : {}),
      ...(expiresMs !== null ? { expiration: String(Math.max(0, Math.round(expiresMs - now))) } : {}),
    },
    headers,
    body: JSON.stringify([args, kwargs, embed]),
  };
  return { queue, message };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function optString(headers: Record<string, unknown>, key: string): string | null {
  const v = headers[key];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string') throw badHeader(key, v, `must be a string or null, got ${typeof v}`);
  return v;
}

function optLimit(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : null;
}

function decodeSignatures(v: unknown, where: string): Signature[] | null {
  if (v === undefined || v === null) return null;
  if (!Array.isArray(v)) throw badBody(`embed.${where} must be a list of signatures`);
  return v.map((s, i) => {
    if (!isObject(s) || typeof s.task !== 'string') throw badBody(`embed.${where}[${i}] is not a signature with a task name`);
    return signatureWithDefaults(s, s.task);
  });
}

/** A signature dict with task name `task`, its missing or ill-typed fields given Celery's defaults. */
export function signatureWithDefaults(s: Record<string, unknown>, task: string): Signature {
  return {
    task,
    args: Array.isArray(s.args) ? s.args : [],
    kwargs: isObject(s.kwargs) ? s.kwargs : {},
    options: isObject(s.options) ? s.options : {},
    subtask_type: typeof s.subtask_type === 'string' ? s.subtask_type : null,
    immutable: s.immutable === true,
  };
}

/**
 * Decodes and validates a wire message. Throws ProtocolError (never anything else)
 * for a non-JSON content type, a body that is not `[args, kwargs, embed]` or missing headers.
 */
export function decodeTaskMessage(raw: { properties?: Partial<WireMessage['properties']> | Record<string, unknown>; headers?: unknown; body: string | Buffer }): TaskRequest {
  const props = (raw.properties ?? {}) as Record<string, unknown>;
  const contentType = typeof props.content_type === 'string' ? props.content_type : JSON_CONTENT_TYPE;
  if (contentType !== JSON_CONTENT_TYPE) {
    throw new ProtocolError('asynx.protocol.contentType', `Refusing message with content type '${contentType}': asynx accepts only application/json (set task_serializer='json' on the sender)`, { value: contentType });
  }
  if (!isObject(raw.headers)) throw new ProtocolError('asynx.protocol.noHeaders', 'Message has no headers: not a Celery protocol v2 task message');
  const h = raw.headers;
  if (typeof h.task !== 'string' || h.task === '') throw new ProtocolError('asynx.protocol.noTask', "Message header 'task' is missing or not a string");
  if (typeof h.id !== 'string' || h.id === '') throw new ProtocolError('asynx.protocol.noId', "Message header 'id' is missing or not a string", { task: h.task });
  let parsed: unknown;
  const text = typeof raw.body === 'string' ? raw.body : raw.body.toString('utf8');
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new ProtocolError('asynx.protocol.badJson', `Message body is not valid JSON (${(err as Error).message})`, { taskId: h.id, task: h.task });
  }
  if (!Array.isArray(parsed) || parsed.length < 2 || !Array.isArray(parsed[0]) || !isObject(parsed[1])) {
    throw badBody('Message body must be [args, kwargs, embed] (protocol v2)', { taskId: h.id, task: h.task });
  }
  const embedRaw = parsed[2];
  const embed: Embed = isObject(embedRaw)
    ? {
        callbacks: decodeSignatures(embedRaw.callbacks, 'callbacks'),
        errbacks: decodeSignatures(embedRaw.errbacks, 'errbacks'),
        chain: decodeSignatures(embedRaw.chain, 'chain'),
        chord: isObject(embedRaw.chord) ? embedRaw.chord : null,
      }
    : { ...EMPTY_EMBED };
  const eta = optString(h, 'eta');
  const expires = optString(h, 'expires');
  const retries = h.retries === undefined || h.retries === null ? 0 : h.retries;
  if (typeof retries !== 'number' || !Number.isInteger(retries) || retries < 0) {
    throw badHeader('retries', retries, 'must be a non-negative integer', { taskId: h.id });
  }
  const tl = Array.isArray(h.timelimit) ? h.timelimit : [null, null];
  const rootId = optString(h, 'root_id') ?? h.id;
  const ignore = h.ignore_result;
  const priority = props.priority === undefined || props.priority === null ? 0 : checkPriority(props.priority, h.id);
  const gi = h.group_index;
  return {
    id: h.id,
    task: h.task,
    args: parsed[0] as unknown[],
    kwargs: parsed[1] as Record<string, unknown>,
    embed,
    retries,
    eta: eta === null ? null : parseCeleryTime(eta, 'eta'),
    expires: expires === null ? null : parseCeleryTime(expires, 'expires'),
    timeLimit: optLimit(tl[0]),
    softTimeLimit: optLimit(tl[1]),
    rootId,
    parentId: optString(h, 'parent_id'),
    group: optString(h, 'group'),
    groupIndex: typeof gi === 'number' ? gi : null,
    ignoreResult: ignore === true,
    replyTo: typeof props.reply_to === 'string' && props.reply_to !== '' ? props.reply_to : null,
    priority,
    origin: typeof h.origin === 'string' ? h.origin : '',
    shadow: optString(h, 'shadow'),
    headers: h as TaskHeaders,
  };
}

/** Standard error names that Python also has as builtins, so Python re-raises the same type. */
const PY_BUILTIN_NAMES = new Set(['TypeError', 'ValueError', 'RuntimeError', 'KeyError', 'IndexError', 'AttributeError', 'NotImplementedError', 'ZeroDivisionError', 'Exception', 'OverflowError', 'AssertionError', 'LookupError', 'ArithmeticError', 'TimeoutError', 'ConnectionError', 'OSError', 'PermissionError', 'FileNotFoundError']);

/** Modules where Python defines the exceptions asynx raises under the same names, so Celery re-raises them. */
const PY_MODULES: Record<string, string> = {
  WorkerLostError: 'billiard.exceptions',
  TimeLimitExceeded: 'billiard.exceptions',
  SoftTimeLimitExceeded: 'billiard.exceptions',
  NotRegistered: 'celery.exceptions',
  MaxRetriesExceededError: 'celery.exceptions',
  TaskRevokedError: 'celery.exceptions',
  ChordError: 'celery.exceptions',
  Retry: 'celery.exceptions',
};

/** JS error → Celery's `{exc_type, exc_message, exc_module}`. */
export function encodeException(err: unknown): EncodedException {
  if (err instanceof RemoteTaskError) return { exc_type: err.excType, exc_message: err.excArgs, exc_module: err.excModule };
  if (err instanceof Error) {
    const name = err.name || 'Error';
    if (name === 'Error') return { exc_type: 'Exception', exc_message: [err.message], exc_module: 'builtins' };
    const module = PY_BUILTIN_NAMES.has(name) ? 'builtins' : (PY_MODULES[name] ?? 'asynx.js');
    return { exc_type: name, exc_message: [err.message], exc_module: module };
  }
  return { exc_type: 'Exception', exc_message: [String(err)], exc_module: 'builtins' };
}

/** Celery's exception dict → an Error whose `name` is the remote type. */
export function decodeException(value: unknown, traceback: string | null): RemoteTaskError {
  if (isObject(value) && typeof value.exc_type === 'string') {
    const args = Array.isArray(value.exc_message) ? value.exc_message : [value.exc_message];
    const message = args.length === 1 ? String(args[0]) : args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(', ');
    const mod = typeof value.exc_module === 'string' ? value.exc_module : 'builtins';
    const type = value.exc_type === 'Exception' && mod === 'builtins' ? 'Error' : value.exc_type;
    return new RemoteTaskError(type, message, mod, traceback, args);
  }
  return new RemoteTaskError('Error', typeof value === 'string' ? value : JSON.stringify(value), 'builtins', traceback);
}

/** The traceback text stored with a failure: the JS stack. */
export function tracebackOf(err: unknown): string | null {
  if (err instanceof Error) return err.stack ?? `${err.name}: ${err.message}`;
  return null;
}
