// What ships is the runtime: `npm pack` lists only bin/, dist/ (no bench or demo), templates/, README and
// package.json, and nothing in dist/ imports the tests, the benchmark or the examples.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { runToEnd } from '../helpers/process.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Paths the package may ship: the launcher, the compiled runtime, the templates, and the top-level docs. */
const SHIPPED = /^(bin\/[^/]+|dist\/.+|templates\/.+|public\/dashboard\/[^/]+|README\.md|package\.json|(LICEN[CS]E|NOTICE|CHANGELOG)(\.[a-z]+)?)$/i;
/** Never shipped, wherever it appears. */
const DEV_ONLY = /(^|\/)(test|tests|bench|demo|examples?|fixtures)(\/|$)|\.test\.|^dist\/(bench|demo)\//;
/** A module specifier (import/export/import()/new URL) that leaves dist/ for the tests, bench or examples. */
const DEV_IMPORT = /(?:from\s*|import\s*\(\s*|import\s*|new URL\(\s*)['"`](?:\.\.?\/)+(?:test|bench|examples)\//;

function jsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? jsFiles(join(dir, e.name)) : /\.(m?js|d\.ts)$/.test(e.name) ? [join(dir, e.name)] : []));
}

describe('package contents', () => {
  it('npm pack lists only the runtime: bin/, dist/ without bench or demo, templates/, README.md, package.json', { timeout: 120_000 }, async () => {
    // --ignore-scripts: pretest has just built dist/; `prepare` would rebuild it.
    const r = await runToEnd('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, timeoutMs: 90_000 });
    assert.equal(r.code, 0, r.stderr);
    const files = (JSON.parse(r.stdout) as Array<{ files: Array<{ path: string }> }>)[0]!.files.map((f) => f.path).sort();
    assert.deepEqual(files.filter((p) => !SHIPPED.test(p)), [], 'files outside bin/, dist/, templates/ and the top-level docs');
    assert.deepEqual(files.filter((p) => DEV_ONLY.test(p)), [], 'test, bench, demo or example files in the package');
    for (const needed of ['bin/asynx', 'dist/index.js', 'dist/index.d.ts', 'dist/cli/main.js', 'dist/worker/pool/prefork-child.js', 'package.json', 'README.md']) {
      assert.ok(files.includes(needed), `${needed} is shipped (run \`npm run build\` first if dist/ is missing)`);
    }
  });

  it('no file in dist/ imports from test/, bench/ or examples/', () => {
    const offenders = jsFiles(join(ROOT, 'dist')).filter((f) => DEV_IMPORT.test(readFileSync(f, 'utf8')));
    assert.deepEqual(offenders.map((f) => f.slice(ROOT.length)), []);
  });

  it('the import check sees the forms tsc emits', () => {
    for (const text of ["import { x } from '../../test/helpers/tmp.js';", "await import('../test/a.js')", "new URL('../../test/helpers/rabbitmq.ts', import.meta.url)", "export { y } from '../bench/main.js'", "import '../examples/demo/app.js'"]) {
      assert.match(text, DEV_IMPORT, text);
    }
    for (const text of ["import { x } from './test-helpers.js';", "import { y } from '../util/latest.js';", "const s = 'see test/ for more';"]) {
      assert.doesNotMatch(text, DEV_IMPORT, text);
    }
  });
});
