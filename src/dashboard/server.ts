// The dashboard's HTTP surface (Hono): the page and its assets, a JSON snapshot, the SSE stream, and the actions.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Hono } from 'hono';
import { streamSSE, type SSEStreamingApi } from 'hono/streaming';
import type { ActionResult, DashboardActions } from './actions.js';
import type { Collector } from './collector.js';
import type { History } from './history.js';
import type { ResolvedDashboardOptions } from './options.js';
import { actionGuard, authGuard, hostGuard, securityHeaders } from './security.js';
import type { ClusterState, TaskView } from './state.js';

/** The page's files: public/dashboard/ beside src/ and dist/ (shipped in the package), and Chart.js's browser build. */
const PUBLIC_DIR = fileURLToPath(new URL('../../public/dashboard/', import.meta.url));
const CHART_JS = join(dirname(createRequire(import.meta.url).resolve('chart.js')), 'chart.umd.min.js');

const ASSETS: Record<string, { file: string; type: string }> = {
  'app.js': { file: join(PUBLIC_DIR, 'app.js'), type: 'text/javascript; charset=utf-8' },
  'style.css': { file: join(PUBLIC_DIR, 'style.css'), type: 'text/css; charset=utf-8' },
  'chart.js': { file: CHART_JS, type: 'text/javascript; charset=utf-8' },
};

/** Longest args / result / traceback text pushed in lists; the full text is one GET away. */
const BRIEF_CHARS = 2000;

function brief(t: TaskView): TaskView & { truncated: boolean } {
  let truncated = false;
  const cut = (s: string | null): string | null => {
    if (s === null || s.length <= BRIEF_CHARS) return s;
    truncated = true;
    return `${s.slice(0, BRIEF_CHARS)}…`;
  };
  return { ...t, args: cut(t.args), kwargs: cut(t.kwargs), result: cut(t.result), exception: cut(t.exception), traceback: cut(t.traceback), truncated };
}

/** What the server needs from the running dashboard. */
export interface ServerParts {
  opts: ResolvedDashboardOptions;
  state: ClusterState;
  history: History;
  collector: Collector;
  actions: DashboardActions;
  csrfToken: string;
  /** Broker URL without its password, for the page's header. */
  brokerLabel: string;
}

/** Pushes what changed to every open page, coalesced every 250 ms; the node list goes out every second regardless (liveness ages). */
export class SseHub {
  private readonly clients = new Set<SSEStreamingApi>();
  private readonly tasks = new Set<string>();
  private minutes = false;
  private queues = false;
  private workers = false;
  private timer: NodeJS.Timeout | null = null;
  private ticks = 0;
  private closed = false;
  private readonly waiters = new Set<() => void>();

  constructor(private readonly parts: Omit<ServerParts, 'collector' | 'actions' | 'csrfToken'>) {}

  markTask(uuid: string): void {
    this.tasks.add(uuid);
  }
  markWorker(): void {
    this.workers = true;
  }
  markMinute(): void {
    this.minutes = true;
  }
  markQueues(): void {
    this.queues = true;
  }

  start(): void {
    this.timer = setInterval(() => void this.flush(), 250);
    this.timer.unref();
  }

  snapshot(): Record<string, unknown> {
    const { state, history, opts, brokerLabel } = this.parts;
    return { readOnly: opts.readOnly, broker: brokerLabel, now: Date.now(), workers: state.workerList(), tasks: state.taskList({ limit: 500 }).map(brief), history: history.snapshot() };
  }

  /** Serves one SSE client until it goes away or the hub closes. */
  async serve(stream: SSEStreamingApi): Promise<void> {
    await stream.writeSSE({ event: 'snapshot', data: JSON.stringify(this.snapshot()) });
    this.clients.add(stream);
    await new Promise<void>((resolve) => {
      const done = () => {
        this.waiters.delete(done);
        resolve();
      };
      this.waiters.add(done);
      stream.onAbort(done);
      if (this.closed) done();
    });
    this.clients.delete(stream);
  }

  private async flush(): Promise<void> {
    if (this.clients.size === 0) {
      this.tasks.clear();
      this.minutes = this.queues = this.workers = false;
      return;
    }
    const { state, history } = this.parts;
    const messages: Array<{ event: string; data: string }> = [];
    this.ticks += 1;
    if (this.workers || this.ticks % 4 === 0) messages.push({ event: 'workers', data: JSON.stringify({ now: Date.now(), workers: state.workerList() }) });
    if (this.tasks.size > 0) {
      const list = [...this.tasks].map((u) => state.task(u)).filter((t): t is TaskView => t !== undefined).map(brief);
      messages.push({ event: 'tasks', data: JSON.stringify(list) });
    }
    if (this.minutes || this.queues) messages.push({ event: 'history', data: JSON.stringify(history.snapshot()) });
    this.tasks.clear();
    this.minutes = this.queues = this.workers = false;
    if (this.ticks % 60 === 0) messages.push({ event: 'ping', data: '{}' });
    for (const client of this.clients) {
      for (const m of messages) {
        try {
          await client.writeSSE(m);
        } catch {
          this.clients.delete(client);
          break;
        }
      }
    }
  }

  /** Ends every stream and the timer. */
  close(): void {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    for (const w of [...this.waiters]) w();
    for (const c of this.clients) void c.close().catch(() => {});
    this.clients.clear();
  }
}

function pageHtml(csrfToken: string, readOnly: boolean, brokerLabel: string): string {
  const template = readFileSync(join(PUBLIC_DIR, 'index.html'), 'utf8');
  const attr = (s: string) => s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  return template.replace('{{csrf}}', attr(csrfToken)).replace('{{readOnly}}', readOnly ? 'true' : 'false').replace('{{broker}}', attr(brokerLabel));
}

async function bodyJson(req: Request): Promise<Record<string, unknown>> {
  try {
    const v: unknown = await req.json();
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/** Builds the Hono app: guards first (Host, credentials), then the routes. */
export function buildApp(parts: ServerParts, hub: SseHub): Hono {
  const { opts, state, actions, collector, csrfToken } = parts;
  const app = new Hono();
  app.use('*', securityHeaders, hostGuard(opts.allowedHosts), authGuard(opts.auth));

  const page = pageHtml(csrfToken, opts.readOnly, parts.brokerLabel);
  app.get('/', (c) => c.html(page));
  app.get('/assets/:name', (c) => {
    const asset = ASSETS[c.req.param('name')];
    if (!asset) return c.notFound();
    return c.body(readFileSync(asset.file), 200, { 'Content-Type': asset.type });
  });

  app.get('/favicon.ico', (c) => c.body(null, 204));
  app.get('/api/snapshot', (c) => c.json(hub.snapshot()));
  app.get('/api/tasks', (c) => c.json(state.taskList({ limit: Math.min(Number(c.req.query('limit') ?? 200) || 200, 5000), ...(c.req.query('state') ? { state: c.req.query('state')! } : {}), ...(c.req.query('name') ? { name: c.req.query('name')! } : {}) })));
  app.get('/api/tasks/:id', (c) => {
    const t = state.task(c.req.param('id'));
    return t ? c.json(t) : c.json({ error: 'no such task in the dashboard (tasks are known from events since it started)' }, 404);
  });
  app.get('/api/events', (c) => streamSSE(c, (stream) => hub.serve(stream)));

  const act = (run: (body: Record<string, unknown>, param: (k: string) => string) => Promise<ActionResult>) => async (c: import('hono').Context) => {
    if (opts.readOnly) return c.json({ ok: false, error: 'the dashboard is read-only' }, 403);
    const result = await run(await bodyJson(c.req.raw), (k) => c.req.param(k) ?? '');
    collector.refresh();
    return c.json(result, result.ok ? 200 : 502);
  };
  const guard = actionGuard(csrfToken);
  app.post('/api/tasks/:id/revoke', guard, act((b, p) => actions.revoke(p('id'), b.terminate === true, typeof b.signal === 'string' ? b.signal : 'SIGTERM')));
  app.post('/api/workers/:node/pool-grow', guard, act((b, p) => actions.pool(p('node'), true, typeof b.n === 'number' ? b.n : 1)));
  app.post('/api/workers/:node/pool-shrink', guard, act((b, p) => actions.pool(p('node'), false, typeof b.n === 'number' ? b.n : 1)));
  app.post('/api/workers/:node/shutdown', guard, act((_b, p) => actions.shutdown(p('node'))));
  app.post('/api/queues/:queue/purge', guard, act((_b, p) => actions.purge(p('queue'))));
  // Any other POST (or a POST to a GET route) is refused the same way, token or not.
  app.post('*', guard, (c) => c.json({ ok: false, error: 'no such action' }, 404));
  return app;
}
