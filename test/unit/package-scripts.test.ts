// The scripts CI relies on: `npm test`'s glob reaches every test file, pretest type-checks and runs the layer
// check (so a violation fails `npm test`), and bench/demo run from their own folders, not from dist/.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { it } from 'node:test';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };

function testFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? (e.name === 'node_modules' ? [] : testFiles(join(dir, e.name))) : e.name.endsWith('.test.ts') ? [relative(ROOT, join(dir, e.name))] : []));
}

it("npm test's glob test/*/*.test.ts reaches every test file", () => {
  assert.match(pkg.scripts.test!, / test\/\*\/\*\.test\.ts$/);
  const all = [...testFiles(join(ROOT, 'test')), ...testFiles(join(ROOT, 'bench')), ...testFiles(join(ROOT, 'examples'))];
  assert.ok(all.length > 10, `found ${all.length} test files`);
  assert.deepEqual(all.filter((f) => !/^test\/[^/]+\/[^/]+\.test\.ts$/.test(f)), [], 'test files the glob misses');
});

it('pretest builds, type-checks tests/bench/examples and runs the dependency-cruiser rules, each step gating the next', () => {
  const steps = pkg.scripts.pretest!.split('&&').map((s) => s.trim());
  assert.deepEqual(steps, ['npm run build', 'tsc -p tsconfig.check.json', 'depcruise src --config .dependency-cruiser.cjs']);
  const check = JSON.parse(readFileSync(join(ROOT, 'tsconfig.check.json'), 'utf8')) as { include: string[] };
  for (const dir of ['src', 'test', 'bench', 'examples']) assert.ok(check.include.includes(`${dir}/**/*.ts`), `tsconfig.check.json includes ${dir}/`);
});

it('bench and demo run their TypeScript through tsx, not from dist/', () => {
  assert.equal(pkg.scripts.demo, 'node --import tsx examples/demo/main.ts');
  assert.match(pkg.scripts.bench!, /node --import tsx bench\/main\.ts$/);
});

it('.ci/run installs the brokers when missing, then runs the README test command', () => {
  const ci = readFileSync(join(ROOT, '.ci/run'), 'utf8');
  assert.match(ci, /rabbitmq-server/);
  assert.match(ci, /python3-celery/);
  assert.match(ci, /^npm install --no-audit --no-fund && npm test$/m);
});
