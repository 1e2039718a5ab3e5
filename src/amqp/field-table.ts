// AMQP header values that every client decodes alike: py-amqp reads the field type `s` as a short string,
// while amqplib writes integers from 128 to 32767 as `s` (signed 16-bit), so Celery fails to parse them.

/**
 * An integer for an AMQP header table, typed as a signed 64-bit `l` (amqplib's typed-value form), which
 * py-amqp, kombu and RabbitMQ read as the same number. Use it for every integer header a Python peer reads
 * (the pidbox `clock`).
 */
export function amqpLong(n: number): { '!': 'long'; value: number } {
  return { '!': 'long', value: n };
}
