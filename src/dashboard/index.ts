// `dashboard()`: the web dashboard's lifecycle — connect the sources, build the state, serve the page, close LIFO.

import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { getRequestListener } from '@hono/node-server';
import { Asynx } from '../app/app.js';
import { openControlClient } from '../control/client.js';
import { receiveEvents } from '../events/receiver.js';
import { createTransport } from '../transports/factory.js';
import { parseBrokerUrl } from '../urls.js';
import { Releasers } from '../util/close-once.js';
import { redact } from '../util/redact.js';
import { DashboardActions } from './actions.js';
import { Collector } from './collector.js';
import { History } from './history.js';
import { type DashboardOptions, listenFailed, resolveDashboardOptions } from './options.js';
import { newToken } from './security.js';
import { buildApp, SseHub } from './server.js';
import { ClusterState } from './state.js';

export type { DashboardOptions } from './options.js';

/** A running dashboard. */
export interface Dashboard {
  /** `http://address:port/` when listening, else null. */
  readonly url: string | null;
  /** The bound port (useful with `port: 0`), or null when not listening. */
  readonly port: number | null;
  /** The broker watched, without its password. */
  readonly broker: string;
  /**
   * A Node request listener serving the dashboard, to mount in a host app: `expressApp.use('/asynx', d.handler)`
   * (express strips the mount path), or `http.createServer(d.handler)`. Links in the page are relative, so any
   * mount path works; a mount path without its trailing slash is redirected to it.
   */
  readonly handler: (req: IncomingMessage, res: ServerResponse) => void;
  /** The same as a WHATWG fetch handler (`Request` → `Response`), for servers built on web standards. */
  readonly fetch: (req: Request) => Response | Promise<Response>;
  /** Stops listening, ends every page's stream and the broker connections. Idempotent. */
  close(): Promise<void>;
}

/**
 * Starts the web dashboard: every node (online while its heartbeats come), the queues and their lengths,
 * recent tasks, charts of outcomes per minute and queue lengths, and actions (revoke / terminate, pool
 * grow / shrink, shutdown, purge) — live, over server-sent events. It reads Celery events, so Python
 * Celery nodes on the same broker show up too. Safe by default: it listens on 127.0.0.1, refuses any other
 * address without `auth`, and every action is a same-origin POST with the page's CSRF token.
 *
 * @example
 * ```ts
 * import { Asynx, dashboard } from 'asynx';
 * const app = new Asynx({ brokerUrl: 'amqp://guest:guest@localhost:5672//' });
 * const d = await dashboard({ app, port: 5555 });   // http://127.0.0.1:5555/
 * // or mount it in a host app: const d = await dashboard({ app, listen: false }); express().use('/asynx', d.handler);
 * await d.close();
 * ```
 * @throws UsageError `asynx.dashboard.authRequired` for a non-loopback address without `auth`; `asynx.dashboard.badAuth`
 * for credentials that are neither `user:password` nor `Bearer <token>`.
 * @throws BrokerUnavailableError when the broker cannot be reached within the connect timeout.
 * @throws AsynxError `asynx.dashboard.listen` (exit code 73) when the port cannot be bound.
 */
export async function dashboard(options: DashboardOptions = {}): Promise<Dashboard> {
  const opts = resolveDashboardOptions(options);
  const cwd = options.cwd ?? options.app?.cwd ?? process.cwd();
  const app = options.app ?? new Asynx({ cwd });
  const config = await app.config();
  const brokerUrl = options.brokerUrl ?? config.brokerUrl;
  const broker = parseBrokerUrl(brokerUrl, cwd);
  const releasers = new Releasers();
  try {
    const transport = await createTransport({ ...config, brokerUrl }, cwd);
    releasers.add('transport', () => transport.close());
    await transport.connect();
    const control = await openControlClient(brokerUrl, { cwd, connectTimeoutMs: config.connectTimeoutMs });
    releasers.add('control client', () => control.close());

    const state = new ClusterState({ maxTasks: opts.maxTasks });
    const history = new History();
    const brokerLabel = redact(brokerUrl);
    const hub = new SseHub({ opts, state, history, brokerLabel });
    const collector = new Collector(
      state,
      history,
      { control, transport, baseQueues: [config.defaultQueue, ...opts.queues], inspectIntervalMs: opts.inspectIntervalMs, queueIntervalMs: opts.queueIntervalMs, enableEvents: opts.enableEvents, senderClock: broker.kind === 'sqlite' },
      { task: (u) => hub.markTask(u), worker: () => hub.markWorker(), minute: () => hub.markMinute(), queues: () => hub.markQueues() },
    );
    releasers.add('collector', () => collector.stop());
    const receiver = await receiveEvents(brokerUrl, collector.onEvent, { cwd, connectTimeoutMs: config.connectTimeoutMs, replay: true });
    releasers.add('event receiver', () => receiver.close());
    collector.start();
    hub.start();
    releasers.add('page streams', () => hub.close());

    const honoApp = buildApp({ opts, state, history, collector, actions: new DashboardActions(control, transport), csrfToken: newToken(), brokerLabel }, hub);
    const fetch = (req: Request) => honoApp.fetch(req);
    const listener = getRequestListener(fetch);
    const handler = (req: IncomingMessage, res: ServerResponse): void => {
      // Mounted without the trailing slash (`/asynx`), relative links would miss the mount: redirect to `/asynx/`.
      const original = (req as IncomingMessage & { originalUrl?: string }).originalUrl;
      const path = (original ?? '').split('?')[0]!;
      if (original !== undefined && req.url?.split('?')[0] === '/' && !path.endsWith('/')) {
        res.writeHead(308, { Location: `${path.slice(path.lastIndexOf('/') + 1)}/` }).end();
        return;
      }
      void listener(req, res);
    };

    let port: number | null = null;
    let url: string | null = null;
    if (opts.listen) {
      const { createServer } = await import('node:http');
      const server: Server = createServer(handler);
      await new Promise<void>((resolve, reject) => {
        server.once('error', (err) => reject(listenFailed(opts.address, opts.port, err)));
        server.listen(opts.port, opts.address, () => resolve());
      });
      const sockets = new Set<import('node:net').Socket>();
      server.on('connection', (s) => {
        sockets.add(s);
        s.once('close', () => sockets.delete(s));
      });
      releasers.add('http server', async () => {
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          // SSE streams never end by themselves: after the hub ended them, drop what is still open.
          for (const s of sockets) s.destroy();
        });
      });
      const bound = server.address();
      port = typeof bound === 'object' && bound ? bound.port : opts.port;
      const host = opts.address.includes(':') ? `[${opts.address}]` : opts.address;
      url = `http://${host}:${port}/`;
    }
    return { url, port, broker: brokerLabel, handler, fetch, close: () => releasers.close() };
  } catch (err) {
    await releasers.close();
    throw err;
  }
}
