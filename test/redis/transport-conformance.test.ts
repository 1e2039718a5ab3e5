// The Transport conformance suite against a private redis-server, plus Redis-specific checks of kombu's layout.

import { after, before } from 'node:test';
import { RedisTransport } from '../../src/transports/redis.js';
import { redisSkip, startRedis, type RedisServer } from '../helpers/redis.js';
import { runTransportConformance } from '../helpers/transport-conformance.js';

const skip = redisSkip();
let server: RedisServer | null = null;
before(async () => {
  if (!skip) server = await startRedis();
});
after(async () => {
  await server?.dispose();
});

runTransportConformance('redis', async () => new RedisTransport(`${server!.url}/0`, { connectTimeoutMs: 5_000, publishTimeoutMs: 5_000 }), { skip });
