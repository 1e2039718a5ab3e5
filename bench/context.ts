// What every benchmark case gets: sizes (full or --quick), a scratch dir, the private RabbitMQ node and Redis
// server, Celery, figures shared between cases of one run, cleanup.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { rabbitmqMissing, startRabbit } from '../test/helpers/rabbitmq.js';
import { redisMissing, startRedis, type RedisServer } from '../test/helpers/redis.js';
import type { Progress } from './progress.js';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const BENCH_APP = join(ROOT, 'bench/app.mjs');
export const BENCH_DIR = join(ROOT, 'bench');
export const PYTHON = '/usr/bin/python3';

/** The private RabbitMQ node (test/helpers/rabbitmq.ts: the bench runs through tsx, like the tests). */
export interface Rabbit {
  url: string;
  dir: string;
  ctl(args: string[], timeoutMs?: number): Promise<string>;
  dispose(): Promise<void>;
  /** The beam.smp pid, for CPU accounting. */
  pid(): number | null;
}

export class BenchContext {
  readonly dir = mkdtempSync(join(tmpdir(), 'asynx-bench-'));
  private readonly releasers: Array<() => Promise<void> | void> = [];
  private rabbitPromise: Promise<Rabbit | null> | null = null;
  rabbitReason: string | null = null;
  private redisPromise: Promise<RedisServer | null> | null = null;
  redisReason: string | null = null;
  private celeryChecked: string | null | undefined;
  private seq = 0;
  /** Figures one case measured that a later case of the same run compares against (e.g. `amqp.async.noop`). */
  readonly memo = new Map<string, number>();

  constructor(
    readonly quick: boolean,
    readonly runs: number,
    readonly progress: Progress,
  ) {
    this.defer(() => rmSync(this.dir, { recursive: true, force: true }));
  }

  /** The N, or N/10 with --quick. */
  n(full: number): number {
    return this.quick ? Math.max(10, Math.round(full / 10)) : full;
  }

  /** A fresh path in the scratch dir. */
  path(name: string): string {
    return join(this.dir, `${++this.seq}-${name}`);
  }

  /** Registers cleanup; runs LIFO in close(). */
  defer(fn: () => Promise<void> | void): void {
    this.releasers.push(fn);
  }

  /** The RabbitMQ node, started on first use; null (with rabbitReason) when it cannot run here. */
  rabbit(): Promise<Rabbit | null> {
    this.rabbitPromise ??= (async () => {
      try {
        const missing = rabbitmqMissing();
        if (missing) {
          this.rabbitReason = missing;
          return null;
        }
        this.progress.step('starting a private RabbitMQ node');
        const node = await startRabbit();
        this.defer(() => node.dispose());
        const pid = () => {
          try {
            return Number(readFileSync(join(node.dir, 'rabbitmq.pid'), 'utf8').trim()) || null;
          } catch {
            return null;
          }
        };
        return { url: node.url, dir: node.dir, ctl: node.ctl, dispose: node.dispose, pid };
      } catch (err) {
        this.rabbitReason = `RabbitMQ unavailable: ${(err as Error).message.split('\n')[0]}`;
        return null;
      }
    })();
    return this.rabbitPromise;
  }

  /** The private Redis server (for BullMQ), started on first use; null (with redisReason) when it cannot run. */
  redis(): Promise<RedisServer | null> {
    this.redisPromise ??= (async () => {
      const missing = redisMissing();
      if (missing) {
        this.redisReason = missing;
        return null;
      }
      try {
        this.progress.step('starting a private redis-server');
        const r = await startRedis();
        this.defer(() => r.dispose());
        return r;
      } catch (err) {
        this.redisReason = `Redis unavailable: ${(err as Error).message.split('\n')[0]}`;
        return null;
      }
    })();
    return this.redisPromise;
  }

  /** Why Celery cannot be compared here, or null. */
  celeryMissing(): string | null {
    if (this.celeryChecked !== undefined) return this.celeryChecked;
    if (!existsSync(PYTHON)) return (this.celeryChecked = `${PYTHON} not found`);
    const r = spawnSync(PYTHON, ['-m', 'celery', '--version'], { encoding: 'utf8', timeout: 30_000 });
    this.celeryChecked = r.status === 0 ? null : `Celery not installed (${PYTHON} -m celery failed): apt-get install -y python3-celery`;
    return this.celeryChecked;
  }

  celeryVersion(): string {
    return spawnSync(PYTHON, ['-m', 'celery', '--version'], { encoding: 'utf8', timeout: 30_000 }).stdout.trim().split(' ')[0] ?? '?';
  }

  async close(): Promise<void> {
    for (const fn of this.releasers.reverse()) {
      try {
        await fn();
      } catch {
        // one failure skips nothing
      }
    }
  }
}
