// Pure parts of the AMQP topology: delay-ladder routing keys and patterns, property mapping, backoff.

import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { describe, test } from 'node:test';
import { AmqpConnection, reconnectDelay } from '../../src/amqp/connection.js';
import { BrokerUnavailableError } from '../../src/errors.js';
import { redact } from '../../src/util/redact.js';
import { DELAY_LEVELS, MAX_DELAY_S, delayEntryLevel, delayRoutingKey, deliverPattern, levelPattern, toPublishOptions } from '../../src/transports/amqp-topology.js';

/** What a topic exchange does with one pattern (enough of AMQP's rules for these patterns). */
function topicMatch(pattern: string, key: string): boolean {
  const p = pattern.split('.');
  const k = key.split('.');
  const go = (i: number, j: number): boolean => {
    if (i === p.length) return j === k.length;
    if (p[i] === '#') return go(i + 1, j) || (j < k.length && go(i, j + 1));
    if (j === k.length) return false;
    return (p[i] === '*' || p[i] === k[j]) && go(i + 1, j + 1);
  };
  return go(0, 0);
}

/** Follows a message through the ladder as RabbitMQ would; returns the total wait (s) and where it lands. */
function simulate(key: string, from = DELAY_LEVELS - 1): { waitedS: number; bits: number } {
  let waited = 0;
  let bits = 0;
  for (let k = from; k >= 0; k--) {
    const intoQueue = topicMatch(levelPattern(k, '1'), key);
    const skip = topicMatch(levelPattern(k, '0'), key);
    assert.ok(intoQueue !== skip, `level ${k}: exactly one route`);
    if (intoQueue) {
      waited += 2 ** k;
      bits++;
    }
  }
  return { waitedS: waited, bits };
}

describe('delay ladder routing', () => {
  for (const delay of [1, 2, 3, 10, 59, 3600, 86_400, MAX_DELAY_S]) {
    test(`${delay} s → waits exactly ${delay} s, then lands in its queue`, () => {
      const key = delayRoutingKey(delay, 'celery');
      assert.equal(key.split('.').length, DELAY_LEVELS + 1);
      assert.equal(simulate(key).waitedS, delay);
      assert.ok(topicMatch(deliverPattern('celery'), key));
    });
  }

  test('publishing at the entry level (the highest set bit) waits just as long as from the top', () => {
    for (const delay of [1, 2, 3, 10, 59, 3600, 86_400, 2 ** 20, MAX_DELAY_S]) {
      const key = delayRoutingKey(delay, 'celery');
      const entry = delayEntryLevel(delay);
      assert.ok(delay >= 2 ** entry && delay < 2 ** (entry + 1), `${delay} s enters at level ${entry}`);
      assert.equal(simulate(key, entry).waitedS, delay, `${delay} s from level ${entry}`);
    }
    assert.equal(delayEntryLevel(3600), 11);
    assert.equal(delayEntryLevel(MAX_DELAY_S), DELAY_LEVELS - 1);
  });

  test('the deliver binding matches the whole queue name, never a suffix of another (dotted names)', () => {
    const key = delayRoutingKey(5, 'a.b');
    assert.ok(topicMatch(deliverPattern('a.b'), key));
    assert.ok(!topicMatch(deliverPattern('b'), key));
    assert.ok(!topicMatch(deliverPattern('x.a.b'), key));
  });
});

describe('AMQP property mapping', () => {
  test('snake-case wire properties → amqplib publish options, unset ones left out', () => {
    const o = toPublishOptions({ content_type: 'application/json', content_encoding: 'utf-8', delivery_mode: 2, priority: 3, correlation_id: 'id', reply_to: 'r', expiration: '60000' }, { id: 'id' });
    assert.deepEqual(o, { contentType: 'application/json', contentEncoding: 'utf-8', deliveryMode: 2, priority: 3, correlationId: 'id', replyTo: 'r', expiration: '60000', headers: { id: 'id' } });
    assert.deepEqual(toPublishOptions({}, undefined), { deliveryMode: 2, headers: {} });
  });
});

describe('connection helpers', () => {
  test('backoff grows, is capped, and is jittered within [ceiling/2, ceiling]', () => {
    assert.equal(reconnectDelay(0, 100, 5000, () => 0), 50);
    assert.equal(reconnectDelay(0, 100, 5000, () => 1), 100);
    assert.equal(reconnectDelay(3, 100, 5000, () => 1), 800);
    assert.equal(reconnectDelay(30, 100, 5000, () => 1), 5000);
    assert.equal(reconnectDelay(30, 100, 5000, () => 0), 2500);
  });

  test('passwords never appear in URLs shown to users', () => {
    assert.equal(redact('amqp://user:s3cret@host:5672/vh'), 'amqp://user:****@host:5672/vh');
    assert.equal(redact('amqps://host/vh'), 'amqps://host/vh');
  });
});

describe('connect timeout', () => {
  test('a server that accepts TCP but never speaks AMQP: BrokerUnavailableError, the timed-out attempt as an AsynxError cause', async () => {
    const sockets = new Set<Socket>();
    const server = createServer((s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    const conn = new AmqpConnection(`amqp://guest:secret@127.0.0.1:${port}/`, { connectTimeoutMs: 300, minBackoffMs: 50, maxBackoffMs: 100 });
    try {
      const t0 = Date.now();
      await assert.rejects(conn.get(Date.now() + 1_000, 'connect'), (err: unknown) => {
        assert.ok(err instanceof BrokerUnavailableError, String(err));
        assert.match(err.message, /amqp:\/\/guest:\*\*\*\*@127\.0\.0\.1:\d+\/ is not reachable within (999|1000) ms/); // the deadline is taken a millisecond before get() reads the clock
        assert.doesNotMatch(err.message, /secret/);
        assert.ok(err.cause instanceof BrokerUnavailableError, `cause is an AsynxError: ${String(err.cause)}`);
        assert.match((err.cause as Error).message, /timed out after 300 ms.*connectTimeout/);
        return true;
      });
      assert.ok(Date.now() - t0 < 3_000);
    } finally {
      await conn.close();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
