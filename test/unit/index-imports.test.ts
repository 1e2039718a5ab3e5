// Importing `asynx` (as every worker pool child does, through the user's app) must not load the web dashboard.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { it } from 'node:test';
import { ROOT } from '../helpers/worker.js';

it('the package index loads no dashboard server (Hono) until dashboard() is called', () => {
  const hook = join(ROOT, 'test', 'fixtures', 'record-imports.mjs');
  const index = pathToFileURL(join(ROOT, 'dist', 'index.js')).href;
  const run = (code: string) => {
    const r = spawnSync(process.execPath, ['--no-warnings', '--loader', hook, '--input-type=module', '-e', code], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    return r.stderr.split('\n').filter((l) => l.startsWith('LOADED ')).map((l) => l.slice(7));
  };
  const loaded = run(`await import(${JSON.stringify(index)});`);
  assert.ok(loaded.some((u) => u.endsWith('/dist/app/app.js')), 'the hook saw the index load the app layer');
  const web = loaded.filter((u) => /\/node_modules\/(hono|@hono)\/|\/dist\/dashboard\/(index|server)\.js$/.test(u));
  assert.deepEqual(web, [], 'every pool child imports the index: a web server there costs each child memory');
  // The lazy entry still reaches the real dashboard.
  const later = run(`const m = await import(${JSON.stringify(index)}); await m.dashboard({ brokerUrl: 'sqlite:///nonexistent-dir-asynx/x.db', address: '192.0.2.1', auth: null }).catch(() => undefined);`);
  assert.ok(later.some((u) => u.endsWith('/dist/dashboard/index.js')), 'dashboard() loads the dashboard module');
});
