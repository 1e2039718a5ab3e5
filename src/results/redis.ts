// redis:// result backend in Celery's format: celery-task-meta-<id> with a TTL, published on the same channel name.

import { randomUUID } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';
import { AsynxError, BrokerUnavailableError, TimeoutError } from '../errors.js';
import { READY_STATES, type ResultBody } from '../protocol/message.js';
import { closeRedis } from '../transports/redis-connection.js';
import { watchFailover } from '../transports/redis-failover.js';
import { Releasers } from '../util/close-once.js';
import { withDeadline } from '../util/deadline.js';
import { redact } from '../util/redact.js';
import type { ChordStore, ResultBackend, ResultTarget } from './backend.js';
import { defineChordCommands, redisChordStore, setAndPublish } from './redis-chords.js';
import { decodeGroup, decodeMeta, encodeGroup, encodeMeta, groupKey, TASK_PREFIX, taskKey } from './redis-meta.js';
import { redisBackendOptions } from './redis-target.js';

/**
 * A store, atomic on the server: Celery's SET (with EX) + PUBLISH of the meta on its key, unless the stored
 * state is SUCCESS (Celery's `_store_result` rule) or the stored state is ready and the new one is not (asynx's
 * contract: a late STARTED never overwrites FAILURE or REVOKED). KEYS: the task key. ARGV: meta, 'EX' | 'PX' |
 * '' (no expiry), the amount, '1' when the new state is ready.
 */
const STORE = `
local cur = redis.call('GET', KEYS[1])
if cur then
  local ok, m = pcall(cjson.decode, cur)
  if ok and type(m) == 'table' then
    local s = m['status']
    if s == 'SUCCESS' then return 0 end
    if ARGV[4] ~= '1' and (s == 'FAILURE' or s == 'REVOKED') then return 0 end
  end
end
if ARGV[2] == '' then redis.call('SET', KEYS[1], ARGV[1]) else redis.call('SET', KEYS[1], ARGV[1], ARGV[2], ARGV[3]) end
redis.call('PUBLISH', KEYS[1], ARGV[1])
return 1
`;

type StoreRedis = Redis & { asynxStore(key: string, meta: string, unit: string, amount: string, ready: string): Promise<number> };

/** Options of the redis:// result backend. */
export interface RedisResultBackendOptions {
  /** Celery's `result_expires`: the TTL of every key written (0: none). */
  expiresMs: number;
  connectTimeoutMs: number;
  /** Bound of one store, get or delete. */
  publishTimeoutMs: number;
}

/** A wait() in progress. */
interface Waiter {
  deliver(body: ResultBody): void;
  abort(err: Error): void;
}

/**
 * The Redis result backend, a peer of Celery's `RedisBackend` on the same database: task meta at
 * `celery-task-meta-<id>` (SET with `result_expires`, then PUBLISH on a channel of the same name), saved
 * groups at `celery-taskset-meta-<gid>`, chord counters at `celery-taskset-meta-<gid>.j/.t/.s`.
 * `wait()` SUBSCRIBEs to the task's channel before it reads the key, so a result stored in between is not
 * missed; after a reconnect it subscribes again and re-reads every key it waits on (Celery's
 * `_reconnect_pubsub`), so a result published while the connection was down is seen too.
 */
export class RedisResultBackend implements ResultBackend {
  readonly kind = 'redis';
  readonly replyTo = randomUUID();
  private readonly options: RedisOptions;
  private cmd: Redis | null = null;
  private sub: Redis | null = null;
  private connecting: Promise<Redis> | null = null;
  private subscribing: Promise<Redis> | null = null;
  private readonly waiters = new Map<string, Set<Waiter>>();
  private readonly releasers = new Releasers();
  /** The chord counters (Celery's layout); usable before connect(): each call connects. */
  readonly chords: ChordStore;

  constructor(
    readonly url: string,
    private readonly opts: RedisResultBackendOptions,
  ) {
    this.options = redisBackendOptions(url);
    this.chords = redisChordStore(() => this.connection(), (what, fn) => this.run(what, fn), opts.expiresMs);
    this.releasers.add('close the connections', async () => {
      const closed = new BrokerUnavailableError(`The Redis result backend on ${redact(this.url)} was closed while waiting for a result`);
      for (const set of [...this.waiters.values()]) for (const w of [...set]) w.abort(closed);
      this.waiters.clear();
      await Promise.all([this.sub, this.cmd].map((c) => (c ? closeRedis(c, 2_000) : undefined)));
      this.sub = null;
      this.cmd = null;
    });
  }

  private get closed(): boolean {
    return this.releasers.closed;
  }

  private closedError(): BrokerUnavailableError {
    return new BrokerUnavailableError(`The Redis result backend on ${redact(this.url)} is closed: create a new one`);
  }

  /** Opens the command connection (idempotent), bounded by connectTimeout. */
  async connect(): Promise<void> {
    await this.connection();
  }

  private connection(): Promise<Redis> {
    if (this.closed) return Promise.reject(this.closedError());
    if (!this.connecting) {
      this.connecting = this.open('asynx results', (r) => {
        r.defineCommand('asynxStore', { numberOfKeys: 1, lua: STORE });
        defineChordCommands(r);
      }).then((r) => (this.cmd = r));
      this.connecting.catch(() => (this.connecting = null));
    }
    return this.connecting;
  }

  /** The subscriber connection (created on the first wait), which re-subscribes and re-reads after a reconnect. */
  private subscriber(): Promise<Redis> {
    if (this.closed) return Promise.reject(this.closedError());
    if (!this.subscribing) {
      this.subscribing = this.open('asynx results (subscriber)', (r) => {
        let first = true;
        r.on('message', (channel: string, message: string) => this.onMessage(channel, message));
        r.on('ready', () => {
          if (first) first = false;
          else void this.resync(r);
        });
      }).then((r) => (this.sub = r));
      this.subscribing.catch(() => (this.subscribing = null));
    }
    return this.subscribing;
  }

  private async open(name: string, setup: (r: Redis) => void): Promise<Redis> {
    const r = new Redis({
      ...this.options,
      lazyConnect: true,
      connectionName: name.replace(/\W+/g, '-'),
      connectTimeout: this.opts.connectTimeoutMs,
      enableOfflineQueue: true,
      autoResubscribe: false,
      retryStrategy: (times) => Math.min(100 * times, 2_000),
    });
    // Failures surface on the commands; the connection reconnects by itself (through sentinels: at once on a failover).
    r.on('error', () => undefined);
    watchFailover(r, this.options);
    setup(r);
    try {
      await withDeadline(r.connect(), this.opts.connectTimeoutMs, () => new BrokerUnavailableError(`Cannot connect to the Redis result backend ${redact(this.url)} within ${this.opts.connectTimeoutMs} ms: is Redis running there?`, { facts: { url: redact(this.url) } }));
    } catch (err) {
      r.disconnect();
      if (err instanceof AsynxError) throw err;
      throw new BrokerUnavailableError(`Cannot connect to the Redis result backend ${redact(this.url)}: ${(err as Error).message}: is Redis running there?`, { cause: err, facts: { url: redact(this.url) } });
    }
    if (this.closed) {
      r.disconnect();
      throw this.closedError();
    }
    return r;
  }

  /** One bounded operation; a failure or a timeout is a BrokerUnavailableError saying what failed. */
  private async run<T>(what: string, fn: () => Promise<T>): Promise<T> {
    const ms = this.opts.publishTimeoutMs;
    try {
      return await withDeadline(fn(), ms, () => new BrokerUnavailableError(`Could not ${what} on the Redis result backend ${redact(this.url)} within ${ms} ms: is Redis up?`, { facts: { url: redact(this.url) } }));
    } catch (err) {
      if (err instanceof AsynxError) throw err;
      throw new BrokerUnavailableError(`Could not ${what} on the Redis result backend ${redact(this.url)}: ${(err as Error).message}`, { cause: err, facts: { url: redact(this.url) } });
    }
  }

  private expiry(): [string, string] {
    const ms = this.opts.expiresMs;
    if (ms <= 0) return ['', ''];
    return ms % 1000 === 0 ? ['EX', String(ms / 1000)] : ['PX', String(ms)];
  }

  async store(target: ResultTarget, body: ResultBody): Promise<void> {
    const r = (await this.connection()) as StoreRedis;
    const meta = encodeMeta({ ...body, task_id: target.taskId });
    const [unit, amount] = this.expiry();
    await this.run(`store the state ${body.status} of task ${target.taskId}`, () => r.asynxStore(taskKey(target.taskId), meta, unit, amount, READY_STATES.has(body.status) ? '1' : '0'));
  }

  async get(taskId: string): Promise<ResultBody | null> {
    const r = await this.connection();
    return decodeMeta(await this.run(`read the state of task ${taskId}`, () => r.get(taskKey(taskId))), taskId);
  }

  async wait(taskId: string, timeoutMs: number, onState?: (body: ResultBody) => void): Promise<ResultBody> {
    await this.connect();
    return new Promise<ResultBody>((resolve, reject) => {
      let last: string | null = null;
      let settled = false;
      let set = this.waiters.get(taskId);
      if (!set) this.waiters.set(taskId, (set = new Set()));
      const finish = () => {
        settled = true;
        clearTimeout(timer);
        set!.delete(waiter);
        if (set!.size === 0 && this.waiters.get(taskId) === set) {
          this.waiters.delete(taskId);
          // Sent now, in order on the subscriber connection, before any later wait's SUBSCRIBE.
          this.sub?.unsubscribe(taskKey(taskId)).catch(() => undefined);
        }
      };
      const waiter: Waiter = {
        deliver: (body) => {
          if (settled) return;
          if (body.status !== last) {
            last = body.status;
            onState?.(body);
          }
          if (!READY_STATES.has(body.status)) return;
          finish();
          resolve(body);
        },
        abort: (err) => {
          if (settled) return;
          finish();
          reject(err);
        },
      };
      const timer = setTimeout(() => {
        if (settled) return;
        finish();
        reject(new TimeoutError(`The result of task ${taskId} was not ready within ${timeoutMs} ms (state ${last ?? 'PENDING'}): is a worker consuming its queue, and does it store results in ${redact(this.url)}?`, { taskId }));
      }, timeoutMs);
      set.add(waiter);
      this.watch(taskId).catch((err: Error) => waiter.abort(err));
    });
  }

  /** SUBSCRIBE first, then GET: a state stored in between arrives as a message, one stored before is read. */
  private async watch(taskId: string): Promise<void> {
    const sub = await this.subscriber();
    const key = taskKey(taskId);
    await this.run(`subscribe to ${key}`, () => sub.subscribe(key));
    const body = await this.get(taskId);
    if (body) this.dispatch(body);
  }

  /** After a reconnect of the subscriber: subscribe again to every key waited on, then read them all (MGET). */
  private async resync(sub: Redis): Promise<void> {
    const ids = [...this.waiters.keys()];
    if (ids.length === 0) return;
    const keys = ids.map(taskKey);
    try {
      await this.run('subscribe again after a reconnect', () => sub.subscribe(...keys));
      const cmd = await this.connection();
      const values = await this.run('re-read the results waited on after a reconnect', () => cmd.mget(...keys));
      values.forEach((v, i) => {
        const body = decodeMeta(v, ids[i]);
        if (body) this.dispatch(body);
      });
    } catch {
      // Redis went away again: the next 'ready' runs this again; each wait keeps its own timeout.
    }
  }

  private onMessage(channel: string, message: string): void {
    if (!channel.startsWith(TASK_PREFIX)) return;
    const body = decodeMeta(message, channel.slice(TASK_PREFIX.length));
    if (body) this.dispatch(body);
  }

  private dispatch(body: ResultBody): void {
    for (const w of [...(this.waiters.get(body.task_id) ?? [])]) w.deliver(body);
  }

  async forget(taskId: string): Promise<void> {
    const r = await this.connection();
    await this.run(`forget task ${taskId}`, () => r.del(taskKey(taskId)));
  }

  /** Redis removes expired keys itself (the TTL of each SET): nothing to sweep. */
  async cleanup(): Promise<number> {
    return 0;
  }

  async saveGroup(groupId: string, taskIds: string[]): Promise<void> {
    const r = await this.connection();
    await this.run(`save group ${groupId}`, () => setAndPublish(r, groupKey(groupId), encodeGroup(groupId, taskIds), this.opts.expiresMs));
  }

  async restoreGroup(groupId: string): Promise<string[] | null> {
    const r = await this.connection();
    return decodeGroup(await this.run(`restore group ${groupId}`, () => r.get(groupKey(groupId))));
  }

  async deleteGroup(groupId: string): Promise<void> {
    const r = await this.connection();
    await this.run(`delete group ${groupId}`, () => r.del(groupKey(groupId)));
  }

  /** Closes for good: pending waits reject, the connections close. The same promise on every call. */
  close(): Promise<void> {
    return this.releasers.close();
  }
}
