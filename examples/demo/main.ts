// The main job: a local HTTP endpoint, an async-pool worker (-P async -c 50), a few hundred HTTP dispatches, a summary.

import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Asynx, type AsyncResult, type HttpResponseResult } from 'asynx';
import { painter, ProgressBar } from '../../dist/cli/output.js';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
}

async function main(): Promise<number> {
  const total = arg('tasks', 300);
  const concurrency = arg('concurrency', 50);
  const c = painter(process.stdout);
  const dir = mkdtempSync(join(tmpdir(), 'asynx-demo-'));
  const brokerUrl = `sqlite://${join(dir, 'demo.db')}`;
  const say = (s: string) => process.stdout.write(`${s}\n`);

  // 1. A local HTTP endpoint: fast, slow, flaky (503 on the first attempt), and missing (404).
  const attempts = new Map<string, number>();
  let served503 = 0;
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://demo');
    const key = url.searchParams.get('n') ?? '';
    const seen = (attempts.get(key) ?? 0) + 1;
    attempts.set(key, seen);
    if (url.pathname === '/flaky' && seen === 1) {
      served503++;
      res.writeHead(503).end('try again');
    } else if (url.pathname === '/missing') res.writeHead(404).end('not here');
    else if (url.pathname === '/slow') setTimeout(() => res.writeHead(200).end(`slow ${key}`), 50);
    else res.writeHead(200, { 'content-type': 'text/plain' }).end(`ok ${key}`);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  say(c.bold(`asynx demo: ${total} HTTP calls through a worker with the async pool (-P async -c ${concurrency}: HTTP calls wait on the network, not on a CPU) on the embedded SQLite broker`));
  say(`  endpoint ${base}   broker ${brokerUrl}`);

  // 2. A worker node, as `asynx worker -A <app> -P async -c 50` would run it: the calls run on the worker's own event
  // loop, 50 at a time. tsx loads the TypeScript app module.
  const bin = fileURLToPath(new URL('../../bin/asynx', import.meta.url));
  const appModule = fileURLToPath(new URL('./app.ts', import.meta.url));
  const logfile = join(process.cwd(), '.asynx', 'demo-worker.log');
  say(`  worker log ${logfile}`);
  const worker = spawn(process.execPath, ['--import', 'tsx', bin, 'worker', '-A', appModule, '-P', 'async', '-c', String(concurrency), '-n', 'demo@%h', '-l', 'info', '-f', logfile], {
    env: { ...process.env, ASYNX_BROKER_URL: brokerUrl },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const workerExit = new Promise<number>((r) => worker.on('exit', (code) => r(code ?? 1)));

  // 3. Dispatch: most calls right away, some with a countdown, some flaky (retried), some 404 (fail).
  const app = new Asynx({ brokerUrl, configFile: false });
  const t0 = Date.now();
  const results: Array<AsyncResult<HttpResponseResult>> = [];
  let delayed = 0;
  for (let i = 0; i < total; i++) {
    const kind = i % 20;
    const path = kind === 0 ? '/missing' : kind < 4 ? '/flaky' : kind < 6 ? '/slow' : '/ok';
    const countdown = kind === 7 || kind === 13 ? 1 + (i % 3) * 0.5 : undefined;
    if (countdown) delayed++;
    results.push(await app.http.dispatch(`${base}${path}`, { params: { n: i }, countdown, retryBackoff: 0.2, maxRetries: 3, timeout: 5 }));
  }
  const sentIn = (Date.now() - t0) / 1000;
  say(`  sent ${total} tasks in ${sentIn.toFixed(2)}s (${delayed} with a countdown)`);

  // 4. Follow the results with a progress bar.
  const bar = new ProgressBar(process.stdout, total, '  results');
  const backend = await app.backend();
  const pending = new Set(results.map((r) => r.id));
  let succeeded = 0;
  let failed = 0;
  const deadline = Date.now() + 120_000;
  while (pending.size && Date.now() < deadline) {
    for (const id of [...pending]) {
      const body = await backend.get(id);
      if (body?.status === 'SUCCESS') succeeded++;
      else if (body?.status === 'FAILURE' || body?.status === 'REVOKED') failed++;
      else continue;
      pending.delete(id);
    }
    bar.update(total - pending.size, `ok ${succeeded} failed ${failed}`);
    if (pending.size) await new Promise((r) => setTimeout(r, 100));
  }
  bar.finish();
  const elapsed = (Date.now() - t0) / 1000;

  // 5. Graceful shutdown: TERM → warm shutdown of the worker.
  worker.kill('SIGTERM');
  const code = await workerExit;
  await app.close();
  await new Promise((r) => server.close(r));
  rmSync(dir, { recursive: true, force: true });

  say('');
  say(c.bold('Summary'));
  say(`  sent       ${total}`);
  say(`  ${c.green('succeeded')}  ${succeeded}`);
  say(`  ${c.yellow('retried')}    ${served503} (503 answers retried with backoff)`);
  say(`  ${c.red('failed')}     ${failed} (404s fail at once, no retry)`);
  if (pending.size) say(`  ${c.red('unfinished')} ${pending.size}`);
  say(`  elapsed    ${elapsed.toFixed(2)}s, ${(total / elapsed).toFixed(1)} tasks/s (includes ${delayed} countdowns of 1-2 s)`);
  say(`  worker     exited ${code} after a warm shutdown`);
  const expectedFailures = Math.ceil(total / 20);
  return pending.size === 0 && code === 0 && failed === expectedFailures ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`demo failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
