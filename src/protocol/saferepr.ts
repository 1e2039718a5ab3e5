// Python's repr for JSON-shaped values, bounded like Celery's saferepr: what task events carry as args, kwargs, result.

/** Celery's `argsrepr_maxsize` / `resultrepr_maxsize`. */
export const REPR_MAX = 1024;

/** Python's `repr(str)`: single quotes unless the text holds a single quote and no double quote. */
export function pyStr(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of s) {
    const code = ch.codePointAt(0)!;
    if (ch === quote || ch === '\\') out += `\\${ch}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (code < 0x20 || code === 0x7f) out += `\\x${code.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return out + quote;
}

/** Python's repr of a float or int: `3`, `0.5`, `1e+21`, `inf`, `nan`. */
function pyNumber(n: number): string {
  if (Number.isNaN(n)) return 'nan';
  if (!Number.isFinite(n)) return n > 0 ? 'inf' : '-inf';
  return String(n).replace(/e([+-])(\d)$/, 'e$10$2');
}

function repr(v: unknown, depth: number, seen: Set<object>): string {
  if (v === null || v === undefined) return 'None';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (typeof v === 'number') return pyNumber(v);
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'string') return pyStr(v);
  if (typeof v === 'function') return `<function ${v.name || 'anonymous'}>`;
  if (typeof v !== 'object') return pyStr(String(v));
  if (seen.has(v)) return Array.isArray(v) ? '[...]' : '{...}';
  if (v instanceof Date) return pyStr(v.toISOString());
  if (v instanceof Error) return `${v.name}(${pyStr(v.message)})`;
  seen.add(v);
  try {
    if (Array.isArray(v)) return depth > 8 ? '[...]' : `[${v.map((x) => repr(x, depth + 1, seen)).join(', ')}]`;
    if (depth > 8) return '{...}';
    return `{${Object.entries(v as Record<string, unknown>).map(([k, x]) => `${pyStr(k)}: ${repr(x, depth + 1, seen)}`).join(', ')}}`;
  } finally {
    seen.delete(v);
  }
}

/** Python's `repr(value)` of a JSON-like value, cut to `max` characters with a trailing `...`. */
export function saferepr(value: unknown, max = REPR_MAX): string {
  const text = repr(value, 0, new Set());
  return text.length > max ? `${text.slice(0, max - 3)}...` : text;
}

/** An exception as Celery's events write it: `TypeError('message')`. */
export function exceptionRepr(type: string, message: string): string {
  return `${type}(${pyStr(message)})`;
}

/** Python's `str(value)` for the `k=v` fields of `celery events --dump` lines. */
export function pyDisplay(value: unknown): string {
  return typeof value === 'string' ? value : saferepr(value, Number.MAX_SAFE_INTEGER);
}
