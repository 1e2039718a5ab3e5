// Picks the transport for a broker URL: sqlite:// (embedded) or amqp(s):// (RabbitMQ).

import { UsageError } from '../errors.js';
import { sqlitePath, type ResolvedConfig } from '../config.js';
import { SqliteTransport } from './sqlite.js';
import type { Transport } from './transport.js';

/** Creates (does not connect) the transport named by `config.brokerUrl`. */
export async function createTransport(config: ResolvedConfig, cwd = process.cwd()): Promise<Transport> {
  const url = config.brokerUrl;
  if (url.startsWith('sqlite://')) {
    return new SqliteTransport(sqlitePath(url, cwd), { visibilityTimeoutMs: config.visibilityTimeoutMs, publishTimeoutMs: config.publishTimeoutMs });
  }
  if (url.startsWith('amqp://') || url.startsWith('amqps://')) {
    const { AmqpTransport } = await import('./amqp.js');
    return new AmqpTransport(url, { connectTimeoutMs: config.connectTimeoutMs, publishTimeoutMs: config.publishTimeoutMs, ...(config.maxPriority !== null ? { maxPriority: config.maxPriority } : {}) });
  }
  throw new UsageError('asynx.config.badBroker', `Broker URL '${url}' is not supported: use sqlite://<path> or amqp://user:pass@host:port/vhost`, { value: url });
}
