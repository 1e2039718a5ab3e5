// Picks the result backend for a URL: sqlite://, rpc:// (AMQP reply queues), redis:// or none, by its parsed kind.

import type { ResolvedConfig } from '../config.js';
import { UsageError } from '../errors.js';
import { parseBackendUrl, parseBrokerUrl } from '../urls.js';
import { redact } from '../util/redact.js';
import type { ResultBackend } from './backend.js';
import { NoResultBackend } from './none.js';
import { SqliteResultBackend } from './sqlite.js';

/** Creates (does not connect) the backend named by `config.resultBackend`; an unknown scheme is a UsageError. */
export async function createResultBackend(config: ResolvedConfig, cwd = process.cwd()): Promise<ResultBackend> {
  const backend = parseBackendUrl(config.resultBackend, cwd);
  switch (backend.kind) {
    case 'none':
      return new NoResultBackend();
    case 'sqlite':
      return new SqliteResultBackend(backend.path, { expiresMs: config.resultExpiresMs });
    case 'rpc': {
      const broker = parseBrokerUrl(config.brokerUrl, cwd);
      if (broker.kind !== 'amqp') {
        throw new UsageError('asynx.config.rpcNeedsAmqp', `Result backend rpc:// needs an AMQP broker, but the broker is ${redact(broker.url)}: use resultBackend sqlite://… or redis://… instead`, { option: 'resultBackend', value: backend.url });
      }
      const { RpcResultBackend } = await import('./rpc.js');
      return new RpcResultBackend(broker.url, { connectTimeoutMs: config.connectTimeoutMs, publishTimeoutMs: config.publishTimeoutMs });
    }
    case 'redis': {
      // Loaded only when used: a SQLite or RabbitMQ deployment never loads the Redis client.
      const { RedisResultBackend } = await import('./redis.js');
      return new RedisResultBackend(backend.url, { expiresMs: config.resultExpiresMs, connectTimeoutMs: config.connectTimeoutMs, publishTimeoutMs: config.publishTimeoutMs });
    }
  }
}
