// What a broker does for the remote-control client: send one request, collect the replies under its ticket.

import type { ControlRequest } from './request.js';

/** What a broker does for the client: send a request and collect the replies under its ticket. */
export interface ControlWire {
  /** Sends `req`; resolves when `timeoutMs` passed or `limit` replies came (immediately for a cast). */
  send(req: ControlRequest, headers: { clock: number; expires: number }, collect: { ticket: string; timeoutMs: number; limit: number | null; onReply: (reply: Record<string, unknown>, clock: unknown) => void } | null): Promise<void>;
  close(): Promise<void>;
}
