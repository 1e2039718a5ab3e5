// The ResultBackend conformance suite against the SQLite result store (a fresh file in a temp directory).

import { join } from 'node:path';
import { after } from 'node:test';
import { SqliteResultBackend } from '../../src/results/sqlite.js';
import { runBackendConformance } from '../helpers/backend-conformance.js';
import { tempDir } from '../helpers/tmp.js';

const tmp = tempDir('asynx-backend-conf-');
after(() => tmp.cleanup());
const file = join(tmp.dir, 'results.db');

runBackendConformance('sqlite', () => ({
  make: async () => new SqliteResultBackend(file, { expiresMs: 60_000 }),
  expiring: async (expiresMs) => new SqliteResultBackend(join(tmp.dir, 'expiring.db'), { expiresMs }),
}));
