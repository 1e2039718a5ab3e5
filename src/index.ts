/**
 * asynx: Celery for Node.js. Define tasks, send them to a broker (embedded SQLite by default, or
 * RabbitMQ), run them in worker nodes (prefork, threads, async or solo pools), and follow their results. Messages are Celery
 * protocol v2, so Python Celery clients and workers interoperate.
 *
 * @example
 * ```ts
 * // tasks.mjs — run a worker with: npx asynx worker -A ./tasks.mjs -c 4
 * import { Asynx } from 'asynx';
 * export const app = new Asynx({ brokerUrl: 'sqlite://./.asynx/asynx.db' });
 * export const add = app.task('tasks.add', (a: number, b: number) => a + b);
 * export default app;
 *
 * // elsewhere, e.g. in a web request handler:
 * // Durations: a bare number is seconds, as in Celery; '250ms', '30s', '5m', '1h' also work.
 * const result = await add.applyAsync({ args: [2, 3], countdown: 10 });
 * console.log(await result.get({ timeout: 30 })); // 5
 * ```
 *
 * @packageDocumentation
 */

export { Asynx, type AppOptions } from './app/app.js';
export { Task, type CallOptions } from './app/task.js';
export { AsyncResult, type GetOptions } from './app/result.js';
// Workflows (Celery's canvas): signatures, chains, groups and chords, on the wire as Celery sends them.
export { TaskSignature, isTaskSignature, type ArgsSuffix, type SignatureOptions, type SignatureCallOptions, type CanvasApp } from './canvas/signature.js';
export { Chain, chain, type ChainPart, type ChainStep, type ResultOf } from './canvas/chain.js';
export { Group, group, type GroupCallOptions, type MemberResult } from './canvas/group.js';
export { GroupResult, type RevokeOptions, type GroupResultTuple } from './canvas/group-result.js';
export { Chord, chord, type ChordCallOptions, type ChainAsBody } from './canvas/chord.js';
export { Chunks, STARMAP_TASK, CHUNKS_TASK } from './canvas/starmap.js';
export { currentTask, type TaskContext, type RetryOptions } from './app/context.js';
export type { TaskOptions, ErrorMatcher } from './app/task-options.js';
export type { AsynxOptions, ResolvedConfig } from './config.js';
export type { SendOptions } from './app/call-options.js';
export type { RateLimit } from './app/rate-limit.js';
export type { Duration } from './util/duration.js';
export type { TaskState, Signature, ResultBody } from './protocol/message.js';
export {
  AsynxError,
  UsageError,
  BrokerUnavailableError,
  ProtocolError,
  NotRegistered,
  Retry,
  MaxRetriesExceededError,
  TimeLimitExceeded,
  SoftTimeLimitExceeded,
  WorkerLostError,
  TimeoutError,
  TaskRevokedError,
  ChordError,
  ChordsUnsupportedError,
  CanvasArgumentError,
  RemoteTaskError,
  ExitCode,
  isAsynxError,
  errorMessage,
  toAsynxError,
  type ErrorFacts,
} from './errors.js';
export { SqliteStorageError } from './sqlite/errors.js';
export {
  multi,
  type MultiOptions,
  type MultiNodes,
  type MultiResult,
  type StartResult,
  type StopResult,
  type StopWaitResult,
  type RestartResult,
  type NodeStatusRow,
  type MultiEventMap,
  type MultiListeners,
} from './multi/index.js';
export {
  HTTP_TASK_NAME,
  HttpRetryableError,
  HttpClientError,
  HttpHostNotAllowedError,
  HttpBadRequestError,
  type HttpDispatcher,
  type HttpParam,
  type HttpRequestSpec,
  type HttpResponseResult,
  type DispatchOptions,
} from './tasks/http.js';
export { Worker, type StopReport } from './worker/worker.js';
export { resolveWorkerOptions, defaultNodeName, type WorkerOptions, type ResolvedWorkerOptions } from './worker/options.js';
/** Pool kinds for `WorkerOptions.pool` (`asynx worker -P`). */
export { POOL_KINDS, type PoolKind } from './worker/pool/task-pool.js';
export { Logger, type LogLevel } from './worker/logger.js';
export type {
  WorkerEventMap,
  WorkerEventName,
  WorkerListener,
  WorkerState,
  WorkerInfo,
  TaskEventBase,
  TaskException,
  TaskReceived,
  FailureCause,
  RejectCause,
} from './worker/events.js';
// Remote control (`asynx inspect|control|status|revoke`, celery inspect/control): ask and answer on any broker.
export { openControlClient, mergeReplies, type ControlClient, type ControlClientOptions, type BroadcastOptions } from './control/client.js';
export { startMailbox, type Mailbox, type MailboxOptions, type ControlHandler } from './control/mailbox.js';
/** Dead letters: see, requeue and purge the messages workers could not run (`asynx dead`). */
export { openDeadLetters, type OpenDeadLettersOptions } from './dead/open-dead-letters.js';
export type { DeadLetters, DeadLetter, DeadLetterDetail, ListDeadLettersOptions, RequeueOptions, RequeueOutcome } from './dead/dead-letters.js';

// Celery events (monitoring): read them from any broker; workers send them (`-E` for task events).
export { receiveEvents, type EventReceiver, type ReceiveOptions } from './events/receiver.js';
export { type CeleryEvent, utcoffsetHours, eventRoutingKey, eventGroup, SOFTWARE_INFO } from './events/event.js';
export { LamportClock } from './events/clock.js';

/** The web dashboard (`asynx dashboard`), or mounted in a host app. */
export { dashboard, type Dashboard, type DashboardOptions } from './dashboard/lazy.js';

// Periodic tasks (`app.periodic()`, `asynx beat`, `asynx worker -B`): one leading scheduler per cluster.
export { Beat, startBeat, SCHEDULED_AT_HEADER, PERIODIC_ENTRY_HEADER, RESUME_AFTER_MS, type BeatOptions, type BeatEventMap } from './beat/service.js';
export { MAX_CATCH_UP, type CatchUp, type PeriodicOptions, type PeriodicEntry, type PeriodicConfigEntry } from './beat/entry.js';
export type { PeriodicSchedule, ResolvedSchedule } from './beat/schedule.js';
export { SqliteScheduleStore, FileScheduleStore, type ScheduleStore } from './beat/store.js';
export { SqliteLease, AmqpLeadership, LEADER_QUEUE, type Leadership, type SqliteLeaseOptions, type AmqpLeadershipOptions } from './beat/leader.js';
