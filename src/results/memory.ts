// In-process result backend for eager mode (users' unit tests): nothing leaves the process.

import { randomUUID } from 'node:crypto';
import { TimeoutError } from '../errors.js';
import { READY_STATES, type ResultBody } from '../protocol/message.js';
import type { ResultBackend, ResultTarget } from './backend.js';

export class MemoryResultBackend implements ResultBackend {
  readonly kind = 'memory';
  readonly replyTo = randomUUID();
  private readonly results = new Map<string, ResultBody>();
  async connect(): Promise<void> {}
  async store(target: ResultTarget, body: ResultBody): Promise<void> {
    const prev = this.results.get(target.taskId);
    if (prev && READY_STATES.has(prev.status) && !READY_STATES.has(body.status)) return;
    this.results.set(target.taskId, body);
  }
  async get(taskId: string): Promise<ResultBody | null> {
    return this.results.get(taskId) ?? null;
  }
  async wait(taskId: string, timeoutMs: number): Promise<ResultBody> {
    const body = this.results.get(taskId);
    if (body && READY_STATES.has(body.status)) return body;
    throw new TimeoutError(`Eager task ${taskId} has no ready result (state ${body?.status ?? 'PENDING'}) after ${timeoutMs} ms`, { taskId });
  }
  async forget(taskId: string): Promise<void> {
    this.results.delete(taskId);
  }
  async cleanup(): Promise<number> {
    return 0;
  }
  private closing: Promise<void> | null = null;
  /** Nothing to release; idempotent like every backend: the same promise on every call. */
  close(): Promise<void> {
    return (this.closing ??= Promise.resolve());
  }
}
