// Hides the password of a URL before it reaches a log line, a status file or an error message.

/**
 * `amqp://user:****@host:5672/vhost`; URLs without a password come back unchanged. Each part of kombu's
 * `sentinel://:pw@h1;sentinel://:pw@h2` is redacted, and so is a `sentinel_password` query option.
 */
export function redact(url: string): string {
  return url
    .replace(/^([a-z][a-z0-9+.-]*:\/\/[^:@/]*):[^@/]*@/i, '$1:****@')
    .replace(/(;[a-z][a-z0-9+.-]*:\/\/[^:@/;]*):[^@/;]*@/gi, '$1:****@')
    .replace(/([?&](?:sentinel_password|sentinelPassword)=)[^&;#]*/g, '$1****');
}
