// The malformed-messages row, one driver for RabbitMQ and Redis: bad task messages sent raw (wrapped as the
// broker's own clients wrap them) and items the broker's format cannot carry, interleaved with good ones. Each
// bad one must end in the dead-letter queue with its reason and, where it carries an id, a FAILURE result;
// none runs; every good task completes exactly once; a valid task with a 10 MB argument runs.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { buildTaskMessage } from '../../src/protocol/codec.js';
import { type FaultRow, Ledger, type Nodes, Progress, recordRow, scaled, waitFor } from './harness.js';

/** A task message before the broker wraps it: snake-case properties, headers, body text (or bytes). */
export interface TaskWire {
  properties: Record<string, unknown>;
  headers: Record<string, unknown>;
  body: string | Buffer;
}

/** What a bad kind sends: a task message to wrap as usual, or an item in the broker's own format, as it is. */
export type Outgoing = { wire: TaskWire } | { item: string; id: string | null };

export interface Bad {
  kind: string;
  /** The dead-letter reason must match this. */
  reason: RegExp;
  /** Whether the worker can read an id from it (then it gets a FAILURE result). */
  hasId: boolean;
  make: (ledger: string) => Outgoing;
}

export interface DeadLetter {
  reason: string;
  queue: string;
  id: string | null;
  /** Bytes of the body (of the whole item, for one that was no message at all). */
  size: number;
}

/** The broker side of the row. */
export interface MalformedBroker {
  broker: FaultRow['broker'];
  url: string;
  queue: string;
  /** Where rejected messages go, for the note and the messages. */
  deadName: string;
  send(out: Outgoing): void | Promise<void>;
  /** Resolves once everything sent so far is in the broker. */
  flush(): Promise<void>;
  /** Drains the dead-letter queue (bounded), once it holds at least `atLeast` messages. */
  drainDead(atLeast: number, timeoutMs: number): Promise<DeadLetter[]>;
  /** Kinds only this broker's format has (a Redis list item that is not a kombu envelope). */
  extra?: Bad[];
  note?: string;
}

const idOf = (o: Outgoing): string | null => ('wire' in o ? (typeof o.wire.headers.id === 'string' ? o.wire.headers.id : null) : o.id);

/** A valid ledger task as the codec builds it. */
export function goodWire(args: unknown[]): TaskWire & { id: string } {
  const { message } = buildTaskMessage('f.ledger', args, {}, { ignoreResult: true });
  return { id: message.headers.id, properties: { ...(message.properties as unknown as Record<string, unknown>) }, headers: { ...(message.headers as unknown as Record<string, unknown>) }, body: message.body };
}

/** The kinds every broker shares: the body, the headers, the task name, the content type. */
export function commonBads(): Bad[] {
  const withBody = (body: string | Buffer) => (ledger: string): Outgoing => ({ wire: { ...goodWire([ledger, 0]), body } });
  const withHeaders = (f: (h: Record<string, unknown>) => Record<string, unknown>) => (ledger: string): Outgoing => {
    const g = goodWire([ledger, 0]);
    return { wire: { ...g, headers: f(g.headers) } };
  };
  return [
    { kind: 'body not JSON', reason: /badJson/, hasId: true, make: withBody('[[1, 2], {}, {') },
    { kind: 'body not [args, kwargs, embed]', reason: /badBody/, hasId: true, make: withBody('{"args": []}') },
    { kind: 'args not an array', reason: /badBody/, hasId: true, make: withBody('["x", {}, {}]') },
    { kind: 'no headers', reason: /noHeaders|noTask/, hasId: false, make: withHeaders(() => ({})) },
    { kind: 'id not a string', reason: /noId/, hasId: false, make: withHeaders((h) => ({ ...h, id: 42 })) },
    { kind: 'retries a string', reason: /badHeader/, hasId: true, make: withHeaders((h) => ({ ...h, retries: '-1' })) },
    {
      kind: 'unknown task',
      reason: /notRegistered|NotRegistered|not registered/i,
      hasId: true,
      make: (ledger) => {
        const { message } = buildTaskMessage('f.nope', [ledger], {});
        return { wire: { properties: { ...(message.properties as unknown as Record<string, unknown>) }, headers: { ...(message.headers as unknown as Record<string, unknown>) }, body: message.body } };
      },
    },
    {
      kind: 'pickle content type',
      reason: /contentType/,
      hasId: true,
      make: (ledger) => {
        const g = goodWire([ledger, 0]);
        return { wire: { ...g, properties: { ...g.properties, content_type: 'application/x-python-serialize', content_encoding: 'binary' }, body: Buffer.from("cos\nsystem\n(S'touch /tmp/pwned'\ntR.", 'latin1') } };
      },
    },
  ];
}

/**
 * The row: a node with a SQLite result backend consumes `b.queue`; n good ledger tasks go out with every bad
 * kind after each tenth of them, and halfway a valid 10 MB task and a 10 MB body that is not JSON.
 */
export async function malformedRow(b: MalformedBroker, opts: { dir: string; nodes: Nodes }): Promise<void> {
  const n = scaled(10_000);
  const bads = [...commonBads(), ...(b.extra ?? [])];
  const ledger = new Ledger(join(opts.dir, `${b.broker}-bad.ledger`));
  const resultsDb = join(opts.dir, `${b.broker}-bad-results.db`);
  const goodIds: string[] = [];
  const badIds = new Set<string>();
  const badIdsWithResult: string[] = [];
  let bigId = '';
  let bigBadId = '';
  const every = Math.max(1, Math.floor(n / 10));
  const t0 = Date.now();
  const node = await opts.nodes.start({ dir: opts.dir, brokerUrl: b.url, name: `${b.broker}-bad`, concurrency: 2, args: ['-Q', b.queue], env: { ASYNX_RESULT_BACKEND: `sqlite://${resultsDb}` } });
  const progress = new Progress(ledger);
  for (let i = 0; i < n; i++) {
    if (i === Math.floor(n / 2)) {
      // 10 MB argument on a valid task: through the broker and the pool IPC, and it runs.
      const big = goodWire([ledger.path, 0, 'x'.repeat(10 * 1024 * 1024)]);
      await b.send({ wire: big });
      bigId = big.id;
      goodIds.push(bigId);
      // 10 MB body that is not JSON: dead-lettered whole.
      const bigBad = { ...goodWire([ledger.path, 0]), body: Buffer.alloc(10 * 1024 * 1024, '{') };
      bigBadId = bigBad.id;
      badIds.add(bigBadId);
      badIdsWithResult.push(bigBadId);
      await b.send({ wire: bigBad });
      await b.flush();
      continue;
    }
    if (i % every === every - 1) {
      for (const bad of bads) {
        const out = bad.make(ledger.path);
        const id = idOf(out);
        if (id !== null) badIds.add(id);
        if (bad.hasId) badIdsWithResult.push(String(id));
        await b.send(out);
      }
    }
    const g = goodWire([ledger.path, 0]);
    await b.send({ wire: g });
    goodIds.push(g.id);
    if (i % 500 === 499) await b.flush();
  }
  await b.flush();
  await ledger.waitAll(goodIds, 120_000);
  const rounds = Math.floor(n / every);
  const expectedDead = rounds * bads.length + 1;
  const dead = await b.drainDead(expectedDead, 60_000);
  const results = new Database(resultsDb, { readonly: true, timeout: 10_000 });
  const failed = () => new Set((results.prepare("SELECT task_id FROM results WHERE status = 'FAILURE'").all() as Array<{ task_id: string }>).map((r) => r.task_id));
  await waitFor(`${badIdsWithResult.length} FAILURE results`, () => badIdsWithResult.every((id) => failed().has(id)), 30_000, 200).catch(() => undefined);
  const failures = failed();
  const goodResults = (results.prepare('SELECT count(*) AS n FROM results').get() as { n: number }).n - failures.size;
  results.close();
  progress.stop();
  const { lost, duplicated } = ledger.tally(goodIds);
  const ran = [...ledger.counts().keys()].filter((id) => badIds.has(id));
  recordRow({ fault: `malformed ×${expectedDead} (${bads.length} kinds) + 10 MB bodies`, broker: b.broker, mode: 'acks-early (≤1)', tasks: n, lost, duplicated, dropped: 0, recoverMs: null, totalMs: Date.now() - t0, note: `${b.note ? `${b.note}; ` : ''}${dead.length} in ${b.deadName} with reasons, ${badIdsWithResult.filter((id) => failures.has(id)).length} FAILURE results, 0 crashes` });
  const code = await node.stop();
  const log = node.log();
  assert.equal(code, 0, 'the worker survived and stopped cleanly');
  assert.equal(lost, 0);
  assert.equal(duplicated, 0);
  assert.deepEqual(ran, [], 'no malformed message ran');
  assert.ok(ledger.counts().has(bigId), 'the 10 MB valid message ran');
  assert.equal(dead.length, expectedDead, `every bad message is in ${b.deadName}, and nothing else`);
  assert.ok(dead.every((d) => d.queue === b.queue), 'x-asynx-queue names the task queue');
  for (const bad of bads) {
    const sharing = bads.filter((x) => x.reason.source === bad.reason.source).length;
    const extra = bad.reason.source === 'badJson' ? 1 : 0; // the 10 MB non-JSON body
    assert.equal(dead.filter((d) => bad.reason.test(d.reason)).length, rounds * sharing + extra, `${bad.kind}: dead-lettered with a reason matching ${bad.reason}`);
  }
  const bigDead = dead.find((d) => d.id === bigBadId);
  assert.ok(bigDead && bigDead.size === 10 * 1024 * 1024 && /badJson/.test(bigDead.reason), 'the 10 MB non-JSON body is dead-lettered whole');
  assert.deepEqual(badIdsWithResult.filter((id) => !failures.has(id)), [], 'every bad message with an id has a FAILURE result');
  assert.equal(goodResults, 0, 'good tasks (ignore_result) stored nothing');
  // One clear line per bad message: what was wrong with it, and that it went to the dead-letter queue.
  const lines = log.split('\n').filter((l) => /dead-letter queue/.test(l));
  assert.ok(lines.length >= expectedDead, `a log line for each bad message (${lines.length} of ${expectedDead})`);
  assert.doesNotMatch(log, /Pool child .* exited unexpectedly/, 'no pool child died');
}
