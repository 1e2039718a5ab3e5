// How `asynx inspect|control|status` print replies: `celery inspect`'s layout (`->  node: OK` + indented body).

import type { ChalkInstance } from 'chalk';

/** A value as Python's `repr` shows it (Celery prints list items with `str()`, so dicts look like this). */
export function pyRepr(v: unknown): string {
  if (v === null || v === undefined) return 'None';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (typeof v === 'number') return String(v);
  if (typeof v === 'string') return v.includes("'") && !v.includes('"') ? `"${v}"` : `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'").replace(/\n/g, '\\n')}'`;
  if (Array.isArray(v)) return `[${v.map(pyRepr).join(', ')}]`;
  if (typeof v === 'object') return `{${Object.entries(v as Record<string, unknown>).map(([k, x]) => `${pyRepr(k)}: ${pyRepr(x)}`).join(', ')}}`;
  return String(v);
}

/** `text.indent`: every line prefixed with `n` spaces. */
export function indent(text: string, n: number): string {
  const pad = ' '.repeat(n);
  return text.split('\n').map((l) => pad + l).join('\n');
}

/** Object keys sorted at every level (`json.dumps(sort_keys=True)`). */
function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]));
  return v;
}

/** Celery's `CLIContext.pretty`: the status word and the body of one node's answer. */
export function pretty(n: unknown): { ok: boolean; text: string } {
  if (Array.isArray(n)) return { ok: true, text: n.length ? n.map((i) => `* ${typeof i === 'string' ? i : pyRepr(i)}`).join('\n') : '- empty -' };
  if (n !== null && typeof n === 'object') {
    const o = n as Record<string, unknown>;
    if ('ok' in o) return { ok: true, text: indent(pretty(o.ok).text, 4) };
    if ('error' in o) return { ok: false, text: indent(pretty(o.error).text, 4) };
    return { ok: true, text: JSON.stringify(sortKeys(o), null, 4) };
  }
  if (typeof n === 'string') return { ok: true, text: n };
  return { ok: true, text: pyRepr(n) };
}

/** One reply `{node: answer}` as `celery inspect` prints it as it arrives; `withBody` false for `status`. */
export function replyText(reply: Record<string, unknown>, paint: ChalkInstance, withBody: boolean): string {
  const [node, answer] = Object.entries(reply)[0] ?? ['?', null];
  const p = pretty(answer);
  const status = p.ok ? paint.green.bold('OK') : paint.red.bold('ERROR');
  const head = `${paint.white.bold('->')}  ${paint.cyan.bold(`${node}: `)}${status}\n`;
  return withBody ? `${head}${indent(p.text, 4)}\n` : head;
}

/** `\n1 node online.` after the replies. */
export function onlineLine(count: number): string {
  return `\n${count} ${count === 1 ? 'node' : 'nodes'} online.\n`;
}
