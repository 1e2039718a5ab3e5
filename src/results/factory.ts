// Picks the result backend for a URL: sqlite://, rpc:// (AMQP reply queues) or none.

import { sqlitePath, type ResolvedConfig } from '../config.js';
import { UsageError } from '../errors.js';
import type { ResultBackend } from './backend.js';
import { NoResultBackend } from './none.js';
import { SqliteResultBackend } from './sqlite.js';

/** Creates (does not connect) the backend named by `config.resultBackend`. */
export async function createResultBackend(config: ResolvedConfig, cwd = process.cwd()): Promise<ResultBackend> {
  const url = config.resultBackend;
  if (url === 'none') return new NoResultBackend();
  if (url.startsWith('sqlite://')) return new SqliteResultBackend(sqlitePath(url, cwd), { expiresMs: config.resultExpiresMs });
  if (url.startsWith('rpc://')) {
    if (!config.brokerUrl.startsWith('amqp')) {
      throw new UsageError('asynx.config.rpcNeedsAmqp', `Result backend rpc:// needs an AMQP broker, but the broker is ${config.brokerUrl}: use resultBackend sqlite://… instead`, { value: url });
    }
    const { RpcResultBackend } = await import('./rpc.js');
    return new RpcResultBackend(config.brokerUrl, { connectTimeoutMs: config.connectTimeoutMs, publishTimeoutMs: config.publishTimeoutMs });
  }
  throw new UsageError('asynx.config.badBackend', `Result backend '${url}' is not supported: use sqlite://<path>, rpc:// or none`, { value: url });
}
