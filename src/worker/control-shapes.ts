// Celery's shapes for what remote control reports: a request's info, rusage, broker info, a queue's declaration.

import { constants } from 'node:os';
import { saferepr } from '../protocol/saferepr.js';
import type { TaskRequest } from '../protocol/codec.js';
import { parseSentinelUrl } from '../transports/redis-sentinel-url.js';
import { parseBrokerUrl, REDIS_TRANSPORT_OPTIONS } from '../urls.js';
import { redact } from '../util/redact.js';

/** What the worker tells about one of its tasks. */
export interface TaskInfo {
  req: TaskRequest;
  queue: string;
  redelivered: boolean;
  acked: boolean;
  /** ms since the epoch when it went to a pool child, 0 before. */
  startedAt: number;
  /** Pid of the pool child running it, or null. */
  workerPid: number | null;
}

/** Celery's `Request.info(safe)`: with `safe`, args and kwargs are repr strings (Flower asks so). */
export function requestInfo(hostname: string, i: TaskInfo, safe = false) {
  return {
    id: i.req.id,
    name: i.req.task,
    args: safe ? saferepr(i.req.args) : i.req.args,
    kwargs: safe ? saferepr(i.req.kwargs) : i.req.kwargs,
    type: i.req.task,
    hostname,
    time_start: i.startedAt ? i.startedAt / 1000 : null,
    acknowledged: i.acked,
    delivery_info: { exchange: '', routing_key: i.queue, priority: i.req.priority, redelivered: i.redelivered },
    worker_pid: i.workerPid,
  };
}

/** Celery's `rusage` of the worker main process (`getrusage(RUSAGE_SELF)`: seconds, KiB, counts). */
export function rusage(): Record<string, number> {
  const u = process.resourceUsage();
  return {
    utime: u.userCPUTime / 1e6,
    stime: u.systemCPUTime / 1e6,
    maxrss: u.maxRSS,
    ixrss: u.sharedMemorySize,
    idrss: u.unsharedDataSize,
    isrss: u.unsharedStackSize,
    minflt: u.minorPageFault,
    majflt: u.majorPageFault,
    nswap: u.swappedOut,
    inblock: u.fsRead,
    oublock: u.fsWrite,
    msgsnd: u.ipcSent,
    msgrcv: u.ipcReceived,
    nsignals: u.signalsCount,
    nvcsw: u.voluntaryContextSwitches,
    nivcsw: u.involuntaryContextSwitches,
  };
}

/** Celery's stats `broker` (kombu `Connection.info()`), password never included. */
export function brokerInfo(brokerUrl: string, connectTimeoutMs: number): Record<string, unknown> {
  const base = { insist: false, connect_timeout: connectTimeoutMs / 1000, transport_options: {}, uri_prefix: null, failover_strategy: 'round-robin', alternates: [] };
  const b = parseBrokerUrl(brokerUrl);
  if (b.kind === 'sqlite') return { hostname: b.path, userid: null, virtual_host: '/', port: null, ssl: false, transport: 'sqlite', login_method: null, heartbeat: null, ...base };
  if (b.kind === 'redis' && b.sentinel) {
    // kombu's sentinel transport: the first sentinel, the others as alternates, master_name a transport option.
    const { options, sentinels } = parseSentinelUrl(brokerUrl, 'brokerUrl', REDIS_TRANSPORT_OPTIONS);
    const [first, ...rest] = sentinels;
    return {
      hostname: first!.host,
      userid: options.username ?? null,
      virtual_host: String(options.db ?? 0),
      port: first!.port,
      ssl: false,
      transport: 'sentinel',
      login_method: null,
      heartbeat: null,
      ...base,
      transport_options: { master_name: options.name },
      alternates: rest.map((s) => `sentinel://${s.host.includes(':') ? `[${s.host}]` : s.host}:${s.port}/${options.db ?? 0}`),
    };
  }
  const u = new URL(brokerUrl);
  if (b.kind === 'redis') {
    const db = u.pathname.replace(/^\//, '') || '0';
    return { hostname: u.hostname, userid: decodeURIComponent(u.username) || null, virtual_host: db, port: u.port ? Number(u.port) : 6379, ssl: b.secure, transport: 'redis', login_method: null, heartbeat: null, ...base };
  }
  const vhost = decodeURIComponent(u.pathname.replace(/^\//, '')) || '/';
  return {
    hostname: u.hostname,
    userid: decodeURIComponent(u.username) || 'guest',
    virtual_host: vhost,
    port: u.port ? Number(u.port) : b.secure ? 5671 : 5672,
    ssl: b.secure,
    transport: 'amqp',
    login_method: 'PLAIN',
    heartbeat: null,
    ...base,
  };
}

/** The broker URL as `celery inspect conf` prints it: the password masked with eight stars. */
export function maskedUrl(url: string): string {
  return redact(url).replace(/:\*{4}@/g, ':********@');
}

/** kombu `Queue.as_dict(recurse=True)` of a task queue as asynx declares it (a same-named durable direct exchange). */
export function queueInfo(queue: string, maxPriority: number | null) {
  return {
    name: queue,
    exchange: { name: queue, type: 'direct', arguments: null, durable: true, passive: false, auto_delete: false, delivery_mode: null, no_declare: false },
    routing_key: queue,
    queue_arguments: maxPriority !== null ? { 'x-max-priority': maxPriority } : null,
    binding_arguments: null,
    consumer_arguments: null,
    durable: true,
    exclusive: false,
    auto_delete: false,
    no_ack: false,
    alias: null,
    bindings: [],
    no_declare: null,
    expires: null,
    message_ttl: null,
    max_length: null,
    max_length_bytes: null,
    max_priority: maxPriority,
  };
}

/**
 * A signal named as Celery's `signals.signum` takes it (`KILL`, `SIGKILL`, or a number), as a Node
 * signal name; null when it is not one.
 */
export function signalName(value: unknown): NodeJS.Signals | null {
  const table = constants.signals as Record<string, number>;
  if (typeof value === 'number') return (Object.keys(table).find((k) => table[k] === value) as NodeJS.Signals | undefined) ?? null;
  if (typeof value !== 'string' || value !== value.toUpperCase()) return null;
  const name = value.startsWith('SIG') ? value : `SIG${value}`;
  return Object.hasOwn(table, name) ? (name as NodeJS.Signals) : null;
}

/** The signal's number (Celery events and logs carry `signum` as a number). */
export function signalNumber(name: NodeJS.Signals): number {
  return (constants.signals as Record<string, number>)[name] ?? 0;
}
