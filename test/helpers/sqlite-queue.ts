// Counts what waits in an embedded-broker database: the tests' view of the messages table.

import Database from 'better-sqlite3';

/** Messages in the SQLite broker file `db` (ready, leased or delayed), read through a read-only connection. */
export function queued(db: string): number {
  const ro = new Database(db, { readonly: true });
  try {
    return (ro.prepare('SELECT COUNT(*) AS n FROM messages').get() as { n: number }).n;
  } finally {
    ro.close();
  }
}
