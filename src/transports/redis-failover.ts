// Sentinel's +switch-master, watched once per process and master: connections ready on the old master reconnect at once.

import { Redis, type RedisOptions } from 'ioredis';

/** The sentinel subscriptions for one master name, and the connections they move. */
interface Watch {
  subs: Redis[];
  conns: Set<Redis>;
  /** The last +switch-master handled: each sentinel announces the same switch. */
  last: string;
}

const watches = new Map<string, Watch>();

function start(options: RedisOptions): Watch {
  const w: Watch = { subs: [], conns: new Set(), last: '' };
  for (const s of options.sentinels ?? []) {
    const sub = new Redis({
      host: s.host ?? '127.0.0.1',
      port: s.port ?? 26379,
      ...(options.sentinelPassword ? { password: options.sentinelPassword } : {}),
      connectionName: 'asynx-failover-watch',
      enableOfflineQueue: true,
      maxRetriesPerRequest: null,
      retryStrategy: (times) => Math.min(500 * times, 5_000),
    });
    sub.on('error', () => undefined); // a sentinel away: it reconnects (and subscribes again) by itself
    sub.subscribe('+switch-master').catch(() => undefined);
    sub.on('message', (_channel: string, payload: string) => {
      // `<name> <old ip> <old port> <new ip> <new port>`
      if (payload.split(' ')[0] !== options.name || payload === w.last) return;
      w.last = payload;
      // Only connections that are up: one still connecting asks the sentinels anyway, and cutting it
      // short would end it for good (ioredis gives up on a connect that its own disconnect interrupted).
      for (const c of w.conns) if (c.status === 'ready') c.disconnect(true);
    });
    w.subs.push(sub);
  }
  return w;
}

/**
 * After a failover the old master goes on taking writes until the sentinels make it a replica (about 10 s
 * later, when it also drops its clients), and what is written there meanwhile is lost. So, for a
 * connection made through sentinels (`options.sentinels`), this process subscribes to `+switch-master` on
 * each sentinel (once per master name, while any such connection is up) and, when its master switches,
 * reconnects every ready connection at once: ioredis asks the sentinels again and lands on the new master.
 * A plain connection is left alone.
 */
export function watchFailover(conn: Redis, options: RedisOptions): void {
  if (!options.sentinels?.length || !options.name) return;
  const key = `${options.name}@${options.sentinels.map((s) => `${s.host}:${s.port}`).join(',')}`;
  conn.on('ready', () => {
    let w = watches.get(key);
    if (!w) watches.set(key, (w = start(options)));
    w.conns.add(conn);
  });
  conn.on('end', () => {
    const w = watches.get(key);
    if (!w || !w.conns.delete(conn) || w.conns.size) return;
    watches.delete(key);
    for (const s of w.subs) s.disconnect();
  });
}
