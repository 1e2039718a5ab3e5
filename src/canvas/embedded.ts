// A worker sends a signature dict found in a message (next chain step, chord body): a task, a chord or a group.

import { randomUUID } from 'node:crypto';
import { encodeError } from '../app/execute.js';
import { ChordsUnsupportedError, UsageError } from '../errors.js';
import type { ResultBody, Signature } from '../protocol/message.js';
import type { ResultBackend } from '../results/backend.js';
import { errorBody } from '../results/body.js';
import { mergeArgs, normalizeSignature, signatureList } from './wire.js';

/** How one task message is sent: the rest of its chain, and its group / chord membership. */
export interface StepSend {
  /** The remaining chain (Celery order: next step last); null = the signature's own `options.chain`, if any. */
  chain: Signature[] | null;
  group?: string;
  groupIndex?: number;
  /** The chord body a header member carries (`embed.chord`). */
  chord?: Record<string, unknown>;
}

/** What the worker lends: its result backend and a way to publish one task signature. */
export interface StepIo {
  backend: ResultBackend;
  /** The reply queue of the task that sends (for results stored on behalf of a step that never runs). */
  replyTo: string | null;
  send(sig: Signature, args: unknown[], how: StepSend): Promise<void>;
}

/** Celery's subtask_type of a chord / group signature dict (`celery.chord`, `celery.group` as task names too). */
function kindOf(s: Signature): 'chord' | 'group' | 'chain' | 'task' {
  if (s.subtask_type === 'chord' || s.task === 'celery.chord') return 'chord';
  if (s.subtask_type === 'group' || s.task === 'celery.group') return 'group';
  if (s.subtask_type === 'chain' || s.task === 'celery.chain') return 'chain';
  return 'task';
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** The members of a group dict (`kwargs.tasks`), or of a chord header (a group dict or a list of signatures). */
function membersOf(v: unknown): Signature[] {
  if (Array.isArray(v)) return signatureList(v) ?? [];
  const g = normalizeSignature(v);
  return g ? (signatureList(g.kwargs.tasks) ?? []) : [];
}

function badStep(step: Signature, problem: string): UsageError {
  return new UsageError('asynx.canvas.badEmbeddedStep', `A ${kindOf(step)} signature in a message ${problem}: the sender built it wrong (Celery sends {subtask_type: 'chord', kwargs: {header, body}} and {subtask_type: 'group', kwargs: {tasks}})`, { task: step.task });
}

/**
 * Sends `step` with `partial` put before its args (unless immutable), as Celery's worker does with
 * `signature(chain.pop()).apply_async((retval,), chain=chain)`:
 * - a task signature is published with the rest of the chain;
 * - a chord (`group | task` in a chain, upgraded by the client) gets its row in the result backend, then every
 *   header member is published with the partial args; the rest of the chain rides on the body (`options.chain`);
 * - a group (the last step of a chain) publishes every member with the partial args, under its frozen group id.
 * A chord on a backend that cannot count (rpc://, none) stores ChordsUnsupportedError on the body and on the
 * rest of the chain instead, so nothing waits forever.
 */
export async function sendStep(step: Signature, partial: unknown[], chain: Signature[] | null, io: StepIo): Promise<void> {
  const kind = kindOf(step);
  if (kind === 'task') return io.send(step, mergeArgs(step, partial), { chain });
  if (kind === 'chain') {
    // A chain dict (kwargs.tasks in run order): its first task goes now, the rest before the outer chain's
    // (given, or in the dict's own options.chain, as a chord body in a chain carries it).
    const tasks = signatureList(step.kwargs.tasks) ?? [];
    if (!tasks.length) throw badStep(step, 'has no tasks');
    const outer = chain ?? signatureList(step.options.chain) ?? [];
    return sendStep(tasks[0]!, partial, [...outer, ...tasks.slice(1).reverse()], io);
  }
  if (kind === 'group') {
    const gid = str(step.options.task_id) ?? randomUUID();
    const members = membersOf(step);
    for (const [i, m] of members.entries()) await io.send(m, mergeArgs(m, partial), { chain: null, group: gid, groupIndex: i });
    return;
  }
  const header = membersOf(step.kwargs.header);
  const rawBody = normalizeSignature(step.kwargs.body);
  if (!rawBody) throw badStep(step, 'has no body signature');
  const headerDict = normalizeSignature(step.kwargs.header);
  const gid = str(headerDict?.options.task_id) ?? str(step.options.task_id) ?? randomUUID();
  // Celery's chord.run: the chord's own options go to the body; the rest of the chain follows the body.
  const { task_id: _own, chain: _c, chord: _d, ...chordOpts } = step.options;
  const bodyOptions: Record<string, unknown> = { ...chordOpts, ...rawBody.options, task_id: str(rawBody.options.task_id) ?? randomUUID() };
  if (chain && chain.length) bodyOptions.chain = chain;
  const body: Signature = { ...rawBody, options: bodyOptions };
  const bodyDict: Record<string, unknown> = { ...body, chord_size: header.length };
  if (!header.length) return sendStep(body, [[]], null, io);
  const chords = io.backend.chords;
  if (!chords) {
    const err = new ChordsUnsupportedError(io.backend.kind);
    await storeOnEach(stepResults(body), (id) => errorBody(id, 'FAILURE', encodeError(err)), io);
    throw err;
  }
  await chords.create(gid, header.length, bodyDict);
  for (const [i, m] of header.entries()) await io.send(m, mergeArgs(m, partial), { chain: null, group: gid, groupIndex: i, chord: bodyDict });
}

/** A result a step will store when it runs: its id, task name and reply queue. */
export interface StepResult {
  id: string;
  task: string;
  replyTo: string | null;
}

/**
 * The results that `step` (and what it carries along) would store: a task's own id and its `options.chain`;
 * a chord's body (the chain's result when the chord is the last step) with the body's chain, and its header
 * members; a group's members. Used to fail them all when an earlier step fails.
 */
export function stepResults(step: Signature): StepResult[] {
  const kind = kindOf(step);
  const own = (s: Signature): StepResult[] => {
    const id = str(s.options.task_id);
    return id ? [{ id, task: s.task, replyTo: str(s.options.reply_to) ?? null }] : [];
  };
  if (kind === 'task') return [...own(step), ...(signatureList(step.options.chain) ?? []).flatMap(stepResults)];
  if (kind === 'group') return membersOf(step).flatMap(own);
  if (kind === 'chain') return [...(signatureList(step.kwargs.tasks) ?? []), ...(signatureList(step.options.chain) ?? [])].flatMap(stepResults);
  const body = normalizeSignature(step.kwargs.body);
  return [...membersOf(step.kwargs.header).flatMap(own), ...(body ? stepResults(body) : [])];
}

/** Stores one body per result (its reply queue, else the sender's). */
export async function storeOnEach(results: StepResult[], bodyFor: (id: string) => ResultBody, io: Pick<StepIo, 'backend' | 'replyTo'>): Promise<void> {
  for (const r of results) await io.backend.store({ taskId: r.id, replyTo: r.replyTo ?? io.replyTo, taskName: r.task }, bodyFor(r.id));
}
