// The ResultBackend conformance suite against the redis:// result backend on a private redis-server.

import { after, before } from 'node:test';
import { RedisResultBackend } from '../../src/results/redis.js';
import { runBackendConformance } from '../helpers/backend-conformance.js';
import { redisSkip, startRedis, type RedisServer } from '../helpers/redis.js';

const skip = redisSkip();
let server: RedisServer | null = null;
before(async () => {
  if (!skip) server = await startRedis();
});
after(async () => {
  await server?.dispose();
});

runBackendConformance(
  'redis',
  () => ({
    make: async () => new RedisResultBackend(`${server!.url}/1`, { expiresMs: 60_000, connectTimeoutMs: 5_000, publishTimeoutMs: 5_000 }),
    // Each key carries its TTL (SET … EX result_expires), removed by Redis itself: test/redis/redis-results.test.ts checks it.
    expiring: { skip: 'Redis expires each key by its own TTL; cleanup() has nothing to sweep' },
  }),
  { skip },
);
