// kombu's Redis key layout and asynx's Redis URL form, without a server.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UsageError } from '../../src/errors.js';
import { parseRedisTarget } from '../../src/transports/redis-connection.js';
import { listKey, listKeys, priorityStep, queueOfList } from '../../src/transports/redis-keys.js';

describe('Redis key layout (kombu)', () => {
  it("priorities map to kombu's steps [0, 3, 6, 9] by bisection, clamped to 0..9", () => {
    assert.deepEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 255, -1].map(priorityStep), [0, 0, 0, 3, 3, 3, 6, 6, 6, 9, 9, 9, 0]);
    assert.equal(priorityStep(undefined), 0);
    assert.equal(listKey('celery', 0), 'celery');
    assert.equal(listKey('celery', 7), 'celery\x06\x166');
    assert.deepEqual(listKeys('q'), ['q', 'q\x06\x163', 'q\x06\x166', 'q\x06\x169']);
  });

  it('a list key names its queue back (a queue name may itself contain the separator)', () => {
    assert.equal(queueOfList('celery\x06\x169'), 'celery');
    assert.equal(queueOfList('celery'), 'celery');
    assert.equal(queueOfList('odd\x06\x16name'), 'odd\x06\x16name');
  });
});

describe('Redis URLs', () => {
  it('host, port, db, password and visibility_timeout (seconds) come from the URL; rediss:// turns TLS on', () => {
    const t = parseRedisTarget('redis://:s3cret@cache.internal:6380/2?visibility_timeout=90');
    assert.equal(t.options.host, 'cache.internal');
    assert.equal(t.options.port, 6380);
    assert.equal(t.options.db, 2);
    assert.equal(t.options.password, 's3cret');
    assert.equal(t.visibilityTimeoutMs, 90_000);
    assert.equal(t.options.tls, undefined);
    const s = parseRedisTarget('rediss://h?ssl_cert_reqs=none');
    assert.deepEqual(s.options.tls, { servername: 'h', rejectUnauthorized: false });
    assert.equal(s.options.port, 6379);
    assert.equal(s.options.db, 0);
  });

  it('an unknown option or a bad value is a usage error that says what to write', () => {
    const bad = (re: RegExp) => (e: unknown) => e instanceof UsageError && e.code === 'asynx.config.badRedisUrl' && re.test(e.message) && !/s3cret/.test(e.message);
    assert.throws(() => parseRedisTarget('redis://:s3cret@h/0?visibility=5'), bad(/option 'visibility'/));
    assert.throws(() => parseRedisTarget('redis://h/0?visibility_timeout=-1'), bad(/positive number of seconds/));
    assert.throws(() => parseRedisTarget('redis://h/zero'), bad(/not a number/));
    assert.throws(() => parseRedisTarget('redis://h/0?delayed_delivery=maybe'), bad(/delayed_delivery=maybe, not true or false/));
  });

  it('delayed_delivery=false (for queues only Python workers consume) is read from redis:// and sentinel URLs', () => {
    assert.equal(parseRedisTarget('redis://h/0').delayedDelivery, undefined);
    assert.equal(parseRedisTarget('redis://h/0?delayed_delivery=false').delayedDelivery, false);
    assert.equal(parseRedisTarget('redis://h/0?delayed_delivery=true&visibility_timeout=5').delayedDelivery, true);
    assert.equal(parseRedisTarget('redis+sentinel://s1:26379,s2/0?master_name=m&delayed_delivery=0').delayedDelivery, false);
  });
});
