// Header tables that Python's py-amqp reads back as they were sent (kombu/Celery peers on the same broker).

/**
 * amqplib picks the narrowest integer type for a header number: `b` up to 127, `s` up to 32767, and so on.
 * py-amqp (what Celery and kombu use) reads `s` as a short *string* and `b` as an unsigned byte, so a
 * header such as `clock: 200` or `timelimit: [300, 600]` makes a Python worker or `celery inspect` fail
 * to decode the frame (UnicodeDecodeError) and a negative byte comes back as 256 + n. Both sides agree on
 * `I` (signed 32-bit) and `l` (64-bit), so every integer outside 0..127 is tagged with one of those.
 */
export function pyAmqpSafe<T>(value: T): T {
  return convert(value) as T;
}

function convert(value: unknown): unknown {
  if (typeof value === 'number') {
    if (!Number.isInteger(value) || (value >= 0 && value < 128)) return value;
    return { '!': value >= -0x8000_0000 && value < 0x8000_0000 ? 'int' : 'long', value };
  }
  if (Array.isArray(value)) return value.map(convert);
  if (value !== null && typeof value === 'object' && !Buffer.isBuffer(value) && !Object.prototype.hasOwnProperty.call(value, '!')) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = convert(v);
    return out;
  }
  return value;
}
