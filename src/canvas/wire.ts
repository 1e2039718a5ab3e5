// Signature options on the wire (Celery's snake_case `options` dict) ↔ asynx call options. Pure, no I/O.

import { signatureWithDefaults, type MessageOptions } from '../protocol/codec.js';
import type { Signature } from '../protocol/message.js';

/** Celery's option names for the asynx call options a signature may carry. */
const NAMES = {
  taskId: 'task_id',
  queue: 'queue',
  priority: 'priority',
  countdown: 'countdown',
  eta: 'eta',
  expires: 'expires',
  retries: 'retries',
  timeLimit: 'time_limit',
  softTimeLimit: 'soft_time_limit',
  ignoreResult: 'ignore_result',
  parentId: 'parent_id',
  rootId: 'root_id',
  group: 'group_id',
  groupIndex: 'group_index',
  shadow: 'shadow',
  link: 'link',
  linkError: 'link_error',
  chain: 'chain',
  chord: 'chord',
  replyTo: 'reply_to',
} as const satisfies Partial<Record<keyof MessageOptions, string>>;

type Named = keyof typeof NAMES;

/** Checked message options → the `options` dict of a Celery signature (Dates as ISO strings, as JSON carries them). */
export function wireOptions(o: Partial<Pick<MessageOptions, Named>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, wire] of Object.entries(NAMES) as Array<[Named, string]>) {
    const v = o[k];
    if (v === undefined || v === null) continue;
    if (Array.isArray(v) && v.length === 0) continue;
    out[wire] = v instanceof Date ? v.toISOString() : v;
  }
  return out;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A signature dict as found in a message (Python or Node built): missing fields filled, never throws. */
export function normalizeSignature(s: unknown): Signature | null {
  if (!isObject(s) || typeof s.task !== 'string' || s.task === '') return null;
  return signatureWithDefaults(s, s.task);
}

/** One signature dict or a list of them, as found in a message → the valid ones (undefined when none). */
export function signatureList(v: unknown): Signature[] | undefined {
  const list = Array.isArray(v) ? v : isObject(v) ? [v] : [];
  const out = list.map(normalizeSignature).filter((s): s is Signature => s !== null);
  return out.length ? out : undefined;
}

/**
 * The `options` dict of a signature received in a message → message options for sending it, as Celery's
 * `Signature.apply_async` merges them. Values of the wrong type are ignored: the signature came from a
 * message, and a bad option there must not stop the workflow.
 */
export function messageOptionsOf(o: Record<string, unknown>): MessageOptions {
  const str = (k: string) => (typeof o[k] === 'string' && o[k] !== '' ? (o[k] as string) : undefined);
  const num = (k: string) => (typeof o[k] === 'number' && Number.isFinite(o[k]) ? (o[k] as number) : undefined);
  const pos = (k: string) => {
    const n = num(k);
    return n !== undefined && n > 0 ? n : undefined;
  };
  const priority = num('priority');
  const groupIndex = num('group_index');
  const expires = num('expires') ?? str('expires');
  return {
    taskId: str('task_id'),
    replyTo: str('reply_to'),
    queue: str('queue') ?? str('routing_key'),
    priority: priority !== undefined && Number.isInteger(priority) && priority >= 0 && priority <= 255 ? priority : undefined,
    countdown: num('countdown'),
    eta: str('eta'),
    expires,
    timeLimit: pos('time_limit'),
    softTimeLimit: pos('soft_time_limit'),
    ignoreResult: o.ignore_result === true ? true : undefined,
    group: str('group_id'),
    groupIndex: groupIndex !== undefined && Number.isInteger(groupIndex) && groupIndex >= 0 ? groupIndex : undefined,
    shadow: str('shadow'),
    link: signatureList(o.link),
    linkError: signatureList(o.link_error),
    chain: signatureList(o.chain),
    chord: isObject(o.chord) ? o.chord : undefined,
  };
}

/** The args a signature is sent with: `partial` before its own args unless it is immutable (Celery's `_merge`). */
export function mergeArgs(sig: Pick<Signature, 'args' | 'immutable'>, partial: unknown[]): unknown[] {
  return sig.immutable ? sig.args : [...partial, ...sig.args];
}
