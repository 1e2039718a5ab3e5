// The Transport conformance suite against the embedded SQLite broker.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { SqliteTransport } from '../../src/transports/sqlite.js';
import { runTransportConformance } from '../helpers/transport-conformance.js';

const dir = mkdtempSync(join(tmpdir(), 'asynx-sqlite-conf-'));
after(() => rmSync(dir, { recursive: true, force: true }));

runTransportConformance('sqlite', async () => new SqliteTransport(join(dir, 'broker.db'), { visibilityTimeoutMs: 5_000, publishTimeoutMs: 2_000 }));
