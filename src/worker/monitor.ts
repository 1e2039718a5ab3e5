// What remote control and Celery event publishing share inside one worker: the clock and the event switches.

import { LamportClock } from '../events/clock.js';

/**
 * One per worker. The event publisher reads {@link MonitorState.taskEvents} before sending a task
 * event and installs {@link MonitorState.sendHeartbeat}; the `enable_events` / `disable_events` /
 * `heartbeat` / `clock` / `hello` control commands flip and call them.
 */
export class MonitorState {
  /** The node's Lamport clock (events' `clock`, replies' `clock` header). */
  readonly clock = new LamportClock();
  /** Whether `task-*` events are sent (`-E`, `workerSendTaskEvents`, `enable_events`). */
  taskEvents: boolean;
  /** Sends one `worker-heartbeat` now with this `freq` (the `heartbeat` command uses 5); a no-op until events start. */
  sendHeartbeat: (freq?: number) => void = () => undefined;

  constructor(taskEvents: boolean) {
    this.taskEvents = taskEvents;
  }
}
