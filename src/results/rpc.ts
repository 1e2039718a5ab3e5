// PLACEHOLDER until the rpc:// backend lands (issue 4).
import { BrokerUnavailableError } from '../errors.js';
import type { ResultBackend } from './backend.js';
export const RpcResultBackend = class {
  constructor(url: string) {
    throw new BrokerUnavailableError(`rpc:// result backend is not built yet (${url})`);
  }
} as unknown as new (brokerUrl: string, opts: { connectTimeoutMs: number; publishTimeoutMs: number }) => ResultBackend;
