// A result backend that keeps nothing (`resultBackend: 'none'`): states are always PENDING.

import { randomUUID } from 'node:crypto';
import { AsynxError } from '../errors.js';
import type { ResultBody } from '../protocol/message.js';
import type { ResultBackend, ResultTarget } from './backend.js';

export class NoResultBackend implements ResultBackend {
  readonly kind = 'none';
  readonly replyTo = randomUUID();
  async connect(): Promise<void> {}
  async store(_t: ResultTarget, _b: ResultBody): Promise<void> {}
  async get(_id: string): Promise<ResultBody | null> {
    return null;
  }
  async wait(taskId: string): Promise<ResultBody> {
    throw new AsynxError('asynx.result.disabled', `Cannot wait for task ${taskId}: the result backend is 'none'; set resultBackend (ASYNX_RESULT_BACKEND) to sqlite://…, redis://… or rpc://`);
  }
  async forget(): Promise<void> {}
  async cleanup(): Promise<number> {
    return 0;
  }
  private closing: Promise<void> | null = null;
  /** Nothing to release; idempotent like every backend: the same promise on every call. */
  close(): Promise<void> {
    return (this.closing ??= Promise.resolve());
  }
}
