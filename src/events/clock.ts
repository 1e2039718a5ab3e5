// Lamport clock: the `clock` field of every Celery event and the pidbox `clock` header (Celery's app.clock).

/** A logical clock shared by a node's events and remote-control replies. */
export class LamportClock {
  private current = 0;

  /** The value now, without advancing. */
  get value(): number {
    return this.current;
  }

  /** Advances for a local event (sending an event or a reply); returns the new value. */
  tick(): number {
    return ++this.current;
  }

  /** Merges a value seen on a received message (`max(local, other) + 1`); returns the new value. */
  adjust(other: unknown): number {
    if (typeof other === 'number' && Number.isFinite(other)) this.current = Math.max(this.current, Math.floor(other));
    return ++this.current;
  }
}
