// Builds result bodies (Celery's rpc/backend form) for each state.

import type { EncodedError, ResultBody } from '../protocol/message.js';

export function successBody(taskId: string, value: unknown): ResultBody {
  return { task_id: taskId, status: 'SUCCESS', result: value, traceback: null, children: [] };
}

export function errorBody(taskId: string, status: 'FAILURE' | 'RETRY' | 'REVOKED', error: EncodedError): ResultBody {
  const { traceback, ...exc } = error;
  // A revoked task raised nothing: Celery stores TaskRevokedError with no traceback (ours would show worker internals).
  return { task_id: taskId, status, result: exc, traceback: status === 'REVOKED' ? null : traceback, children: [] };
}

export function stateBody(taskId: string, status: string, meta: unknown): ResultBody {
  return { task_id: taskId, status, result: meta ?? null, traceback: null, children: [] };
}
