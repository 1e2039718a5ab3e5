// Picks the transport for a broker URL: sqlite:// (embedded), amqp(s):// (RabbitMQ) or redis(s):// (Redis), by its parsed kind.

import type { ResolvedConfig } from '../config.js';
import { parseBrokerUrl } from '../urls.js';
import { SqliteTransport } from './sqlite.js';
import type { Transport } from './transport.js';

/** Creates (does not connect) the transport named by `config.brokerUrl`; an unknown scheme is a UsageError. */
export async function createTransport(config: ResolvedConfig, cwd = process.cwd()): Promise<Transport> {
  const broker = parseBrokerUrl(config.brokerUrl, cwd);
  switch (broker.kind) {
    case 'sqlite':
      return new SqliteTransport(broker.path, { visibilityTimeoutMs: config.visibilityTimeoutMs, publishTimeoutMs: config.publishTimeoutMs, eventsMaxCount: config.eventsMaxCount, eventsMaxAgeMs: config.eventsMaxAgeMs });
    case 'amqp': {
      const { AmqpTransport } = await import('./amqp.js');
      return new AmqpTransport(broker.url, { connectTimeoutMs: config.connectTimeoutMs, publishTimeoutMs: config.publishTimeoutMs, ...(config.maxPriority !== null ? { maxPriority: config.maxPriority } : {}) });
    }
    case 'redis': {
      const { RedisTransport } = await import('./redis.js');
      return new RedisTransport(broker.url, { connectTimeoutMs: config.connectTimeoutMs, publishTimeoutMs: config.publishTimeoutMs });
    }
  }
}
