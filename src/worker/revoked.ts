// The ids revoked by remote control, bounded as Celery's LimitedSet (50 000 ids, each kept 3 hours).

/** Celery's `REVOKES_MAX`. */
export const REVOKED_MAX = 50_000;
/** Celery's `REVOKE_EXPIRES`, ms. */
export const REVOKED_EXPIRES_MS = 10_800_000;

/** Revoked task ids, oldest first; an id older than the expiry, or beyond the bound, is forgotten. */
export class RevokedSet {
  /** id → when it was revoked, ms since the epoch (insertion order = age order). */
  private readonly at = new Map<string, number>();

  constructor(
    private readonly max = REVOKED_MAX,
    private readonly expiresMs = REVOKED_EXPIRES_MS,
  ) {}

  /** Adds (or refreshes) an id. `when`: ms since the epoch. */
  add(id: string, when = Date.now()): void {
    this.at.delete(id);
    this.at.set(id, when);
    this.purge();
  }

  has(id: string): boolean {
    const t = this.at.get(id);
    return t !== undefined && Date.now() - t < this.expiresMs;
  }

  /** The ids, oldest first (`inspect revoked`). */
  ids(): string[] {
    this.purge();
    return [...this.at.keys()].filter((id) => this.has(id));
  }

  /** `{id: revoked-at seconds}`, the LimitedSet data `hello` sends to a syncing node. */
  entries(): Record<string, number> {
    this.purge();
    return Object.fromEntries([...this.at].filter(([id]) => this.has(id)).map(([id, t]) => [id, t / 1000]));
  }

  /** Takes another node's revoked ids (`hello` from a node starting up): a list, or `{id: seconds}`. */
  merge(other: unknown): void {
    if (Array.isArray(other)) {
      for (const id of other) if (typeof id === 'string') this.add(id);
    } else if (typeof other === 'object' && other !== null) {
      for (const [id, t] of Object.entries(other)) this.add(id, typeof t === 'number' && Number.isFinite(t) ? Math.min(t * 1000, Date.now()) : Date.now());
    }
  }

  /** Drops the oldest beyond the bound, and expired ones from the front (one merged late may wait behind). */
  private purge(): void {
    const now = Date.now();
    for (const [id, t] of this.at) {
      if (this.at.size > this.max || now - t >= this.expiresMs) this.at.delete(id);
      else break;
    }
  }
}
