// Hides the password of a URL before it reaches a log line, a status file or an error message.

/** `amqp://user:****@host:5672/vhost`; URLs without a password come back unchanged. */
export function redact(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:@/]*):[^@/]*@/i, '$1:****@');
}
