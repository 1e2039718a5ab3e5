// Golden tests: every captured Celery 5.2 message decodes, and re-encodes to the same headers and body.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { RemoteTaskError } from '../../src/errors.js';
import { buildTaskMessage, decodeException, decodeTaskMessage, encodeException, parseCeleryTime, type MessageOptions } from '../../src/protocol/codec.js';

interface Vector {
  name: string;
  exchange?: string;
  routing_key?: string;
  routing_keys?: string[];
  properties: Record<string, unknown>;
  headers?: Record<string, unknown>;
  body: unknown;
}

const fixtures = JSON.parse(readFileSync(new URL('../fixtures/celery-v2.json', import.meta.url), 'utf8')) as { task_messages: Vector[]; worker_publishes: Vector[] };

/** Queue captures keep headers apart; firehose captures keep them inside the properties. */
function normalise(v: Vector): { properties: Record<string, unknown>; headers: Record<string, unknown>; body: string; queue: string } {
  const { headers: inner, ...properties } = v.properties as Record<string, unknown> & { headers?: Record<string, unknown> };
  return { properties, headers: v.headers ?? inner ?? {}, body: JSON.stringify(v.body), queue: v.routing_key ?? v.routing_keys?.[0] ?? 'celery' };
}

/** Headers asynx leaves out when they hold these values: what a Celery 5.2 worker assumes when one is absent. */
const CELERY_DEFAULTS: Record<string, unknown> = { shadow: null, eta: null, expires: null, group: null, group_index: null, retries: 0, timelimit: [null, null], parent_id: null, ignore_result: false };

const taskVectors: Vector[] = [...fixtures.task_messages, ...fixtures.worker_publishes.filter((v) => v.name.startsWith('task_message'))];

/** The send options a decoded request corresponds to, so re-encoding can be compared. */
function optionsOf(raw: ReturnType<typeof normalise>): MessageOptions & { origin: string } {
  const r = decodeTaskMessage(raw);
  const embed = r.embed;
  return {
    taskId: r.id,
    eta: r.eta === null ? undefined : new Date(r.eta),
    expires: r.expires === null ? undefined : new Date(r.expires),
    priority: r.priority,
    queue: raw.queue,
    retries: r.retries,
    timeLimit: r.timeLimit ?? undefined,
    softTimeLimit: r.softTimeLimit ?? undefined,
    ignoreResult: r.ignoreResult,
    parentId: r.parentId,
    rootId: r.rootId,
    group: r.group,
    groupIndex: r.groupIndex,
    shadow: r.shadow,
    replyTo: r.replyTo ?? undefined,
    link: embed.callbacks ?? undefined,
    linkError: embed.errbacks ?? undefined,
    chain: embed.chain ?? undefined,
    origin: r.origin,
  };
}

describe('codec: captured Celery 5.2 task messages', () => {
  test('the fixture file holds the captured vectors', () => {
    assert.ok(taskVectors.length >= 14, `only ${taskVectors.length} task vectors`);
  });

  for (const v of taskVectors) {
    test(`decodes ${v.name}`, () => {
      const raw = normalise(v);
      const r = decodeTaskMessage(raw);
      const h = raw.headers;
      const body = v.body as [unknown[], Record<string, unknown>, Record<string, unknown>];
      assert.equal(r.id, h.id);
      assert.equal(r.task, h.task);
      assert.equal(r.id, raw.properties.correlation_id, 'id = correlation_id');
      assert.deepEqual(r.args, body[0]);
      assert.deepEqual(r.kwargs, body[1]);
      assert.equal(r.retries, h.retries);
      assert.equal(r.rootId, h.root_id);
      assert.equal(r.parentId, h.parent_id);
      assert.equal(r.group, h.group);
      assert.equal(r.ignoreResult, h.ignore_result);
      assert.equal(r.replyTo, raw.properties.reply_to);
      assert.equal(r.priority, raw.properties.priority ?? 0);
      assert.equal(r.eta, h.eta ? parseCeleryTime(h.eta as string, 'eta') : null);
      assert.equal(r.expires, h.expires ? parseCeleryTime(h.expires as string, 'expires') : null);
      const [hard, soft] = h.timelimit as [number | null, number | null];
      assert.equal(r.timeLimit, hard);
      assert.equal(r.softTimeLimit, soft);
      assert.deepEqual(r.embed, body[2]);
    });

    test(`re-encodes ${v.name} to the same headers, properties and body`, () => {
      const raw = normalise(v);
      const opts = optionsOf(raw);
      const body = v.body as [unknown[], Record<string, unknown>, unknown];
      const now = Date.now();
      const { queue, message } = buildTaskMessage(raw.headers.task as string, body[0], body[1], { ...opts, now });
      assert.equal(queue, raw.queue);
      // Celery's header set, less those holding Celery's default (a Celery worker reads them so when absent),
      // same values, except the sender-specific ones.
      for (const k of Object.keys(message.headers)) assert.ok(k in raw.headers, `header ${k} is one Celery sends`);
      for (const [k, want] of Object.entries(raw.headers)) {
        const got = message.headers[k];
        if (!(k in message.headers)) {
          assert.ok(k in CELERY_DEFAULTS, `header ${k} is left out, but only Celery's defaults may be`);
          assert.deepEqual(want, CELERY_DEFAULTS[k], `header ${k} is left out, so Celery's value must be its default`);
        } else if (k === 'lang') assert.equal(got, 'js');
        else if (k === 'argsrepr' || k === 'kwargsrepr') assert.equal(typeof got, 'string');
        else if ((k === 'eta' || k === 'expires') && typeof want === 'string') {
          assert.match(got as string, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$/, `${k} in Celery's form`);
          assert.equal(parseCeleryTime(got as string, k), parseCeleryTime(want, k));
        } else assert.deepEqual(got, want, `header ${k}`);
      }
      // Same property set (expiration only when expires is set), same values but the relative expiration.
      const props = message.properties as unknown as Record<string, unknown>;
      const wantProps = { priority: 0, ...raw.properties };
      assert.deepEqual(Object.keys(props).sort(), Object.keys(wantProps).sort());
      for (const [k, want] of Object.entries(wantProps)) {
        if (k === 'expiration') assert.match(props[k] as string, /^\d+$/);
        else assert.deepEqual(props[k], want, `property ${k}`);
      }
      // Same body, byte for byte after JSON parsing: [args, kwargs, embed].
      assert.deepEqual(JSON.parse(message.body), v.body);
    });
  }

  test('expires as seconds becomes an absolute time and a matching AMQP expiration', () => {
    const now = Date.parse('2026-11-24T13:55:30.717Z');
    const { message } = buildTaskMessage('cap.add', [1, 2], {}, { expires: 60, now });
    assert.equal(message.headers.expires, '2026-11-24T13:56:30.717000+00:00');
    assert.equal(message.properties.expiration, '60000');
  });

  test('countdown becomes an eta now + countdown, with microseconds and +00:00', () => {
    const now = Date.parse('2026-11-24T13:55:30.698Z');
    const { message } = buildTaskMessage('cap.add', [1], { b: 2 }, { countdown: 10, now });
    assert.equal(message.headers.eta, '2026-11-24T13:55:40.698000+00:00');
  });

  test('a pickle message is refused, never decoded', () => {
    const v = normalise(fixtures.task_messages[0]);
    assert.throws(() => decodeTaskMessage({ ...v, properties: { ...v.properties, content_type: 'application/x-python-serialize' }, body: '\u0080\u0004K\u0001.' }), { name: 'ProtocolError', code: 'asynx.protocol.contentType' });
  });

  test('a received message with a priority outside 0..255 is a ProtocolError; an absent priority is 0', () => {
    const v = normalise(fixtures.task_messages[0]);
    assert.throws(() => decodeTaskMessage({ ...v, properties: { ...v.properties, priority: 256 } }), { name: 'ProtocolError', code: 'asynx.protocol.badPriority' });
    assert.throws(() => decodeTaskMessage({ ...v, properties: { ...v.properties, priority: -1 } }), { name: 'ProtocolError', code: 'asynx.protocol.badPriority' });
    const { priority: _p, ...noPriority } = v.properties as Record<string, unknown>;
    assert.equal(decodeTaskMessage({ ...v, properties: noPriority }).priority, 0);
  });

  test('message options that did not come through the call check (fields of a received message) fail as ProtocolError', () => {
    assert.throws(() => buildTaskMessage('t', [], {}, { countdown: 'soon' as unknown as number }), { name: 'ProtocolError', code: 'asynx.protocol.badOption' });
    assert.throws(() => buildTaskMessage('t', [], {}, { priority: 999 }), { name: 'ProtocolError', code: 'asynx.protocol.badPriority' });
    assert.throws(() => buildTaskMessage('t', [], {}, { eta: new Date('nope') }), { name: 'ProtocolError', code: 'asynx.protocol.badTime' });
  });

  test('unknown headers (stamps, replaced_task_nesting) are tolerated', () => {
    const v = normalise(fixtures.task_messages[0]);
    const r = decodeTaskMessage({ ...v, headers: { ...v.headers, stamped_headers: ['x'], stamps: { x: 'y' }, replaced_task_nesting: 0 } });
    assert.equal(r.task, 'cap.add');
  });
});

describe('codec: captured result bodies', () => {
  const results = fixtures.worker_publishes.filter((v) => v.name.startsWith('rpc_result'));

  test('every rpc result is published as Celery does: correlation_id = task id, delivery_mode 1, JSON', () => {
    assert.ok(results.length >= 6);
    for (const v of results) {
      const body = v.body as Record<string, unknown>;
      assert.equal(v.properties.correlation_id, body.task_id, v.name);
      assert.equal(v.properties.delivery_mode, 1, v.name);
      assert.equal(v.properties.content_type, 'application/json', v.name);
      assert.deepEqual(Object.keys(body).sort(), ['children', 'result', 'status', 'task_id', 'traceback'], v.name);
    }
  });

  test('a Python ValueError decodes to an error named ValueError with its message', () => {
    const v = results.find((r) => r.name === 'rpc_result_failure_valueerror')!;
    const body = v.body as { result: unknown; traceback: string };
    const err = decodeException(body.result, body.traceback);
    assert.ok(err instanceof RemoteTaskError);
    assert.equal(err.name, 'ValueError');
    assert.equal(err.message, 'kaput');
    assert.equal(err.excModule, 'builtins');
    assert.match(err.remoteTraceback ?? '', /Traceback/);
  });

  test('a JS TypeError encodes so Python re-raises TypeError', () => {
    assert.deepEqual(encodeException(new TypeError('bad arg')), { exc_type: 'TypeError', exc_message: ['bad arg'], exc_module: 'builtins' });
    assert.deepEqual(encodeException(new Error('plain')), { exc_type: 'Exception', exc_message: ['plain'], exc_module: 'builtins' });
  });

  test('round trip: encode then decode keeps type and message', () => {
    const err = decodeException(encodeException(new RangeError('out of range')), null);
    assert.equal(err.name, 'RangeError');
    assert.equal(err.message, 'out of range');
  });
});

describe('codec: display headers', () => {
  test('argsrepr and kwargsrepr are Python reprs, as Celery sends them (a Python worker shows them as its own)', () => {
    const { message } = buildTaskMessage('t.x', [1, 'a', null, true], { k: [2.5] }, { queue: 'celery' });
    assert.equal(message.headers.argsrepr, "[1, 'a', None, True]");
    assert.equal(message.headers.kwargsrepr, "{'k': [2.5]}");
  });
});
