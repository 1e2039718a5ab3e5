// An app module (-A) that fails: missing is a usage error (64); throwing or not parsing is 70, printed once with file:line.

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ExitCode } from '../../src/errors.js';
import { runCli } from '../helpers/worker.js';
import { tempDir } from '../helpers/tmp.js';

const count = (haystack: string, needle: string) => haystack.split(needle).length - 1;

describe('asynx worker -A <module that fails>', () => {
  const tmp = tempDir();
  const env = { ASYNX_BROKER_URL: `sqlite://${join(tmp.dir, 'b.db')}` };
  const throws = join(tmp.dir, 'throws.mjs');
  writeFileSync(throws, "throw new Error('boom at import');\n");
  const broken = join(tmp.dir, 'broken.mjs');
  writeFileSync(broken, 'export default {\n  x: 1,\n  y: = 2,\n};\n');
  after(() => tmp.cleanup());

  it('a module that does not exist is a usage error (64)', async () => {
    const r = await runCli(['worker', '-A', join(tmp.dir, 'nope.mjs')], env);
    assert.equal(r.code, ExitCode.usage, r.stderr);
    assert.match(r.stderr, /^asynx: Cannot find the app module/);
  });

  it('a module that throws on import exits 70 and says so once, as one asynx: line', async () => {
    const r = await runCli(['worker', '-A', throws], env);
    assert.equal(r.code, ExitCode.software, r.stderr);
    assert.equal(count(r.stderr, 'boom at import'), 1, `printed once:\n${r.stderr}`);
    assert.match(r.stderr, /^asynx: Importing the app module .*throws\.mjs failed: /m);
    assert.doesNotMatch(r.stderr, /Error: Error:/);
  });

  it('a syntax error in the module exits 70 and names file:line', async () => {
    const r = await runCli(['worker', '-A', broken], env);
    assert.equal(r.code, ExitCode.software, r.stderr);
    assert.ok(r.stderr.includes(`${broken}:3`), `names the line:\n${r.stderr}`);
    assert.equal(count(r.stderr, 'SyntaxError'), 1, `printed once:\n${r.stderr}`);
  });
});
