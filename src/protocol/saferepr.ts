// Python's repr for JSON-shaped values, bounded like Celery's saferepr: what task events carry as args, kwargs, result.

/** Celery's `argsrepr_maxsize` / `resultrepr_maxsize`. */
export const REPR_MAX = 1024;

/** Python's `repr(str)`: single quotes unless the text holds a single quote and no double quote. */
export function pyStr(s: string): string {
  return pyStrUpTo(s, Infinity);
}

/**
 * `pyStr(s)`, or its first characters once they are more than `budget` (the quote is chosen from the
 * whole text, so the prefix is the same).
 */
function pyStrUpTo(s: string, budget: number): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of s) {
    if (out.length > budget) return out;
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

/**
 * Python's repr of `v`, or only its start once that is more than `budget` characters: the caller cuts the
 * text anyway, and a large argument list or result is not walked past what is shown (the prefix is the same).
 */
function repr(v: unknown, depth: number, seen: Set<object>, budget: number): string {
  if (v === null || v === undefined) return 'None';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (typeof v === 'number') return pyNumber(v);
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'string') return pyStrUpTo(v, budget);
  if (typeof v === 'function') return `<function ${v.name || 'anonymous'}>`;
  if (typeof v !== 'object') return pyStrUpTo(String(v), budget);
  if (seen.has(v)) return Array.isArray(v) ? '[...]' : '{...}';
  if (v instanceof Date) return pyStr(v.toISOString());
  if (v instanceof Error) return `${v.name}(${pyStr(v.message)})`;
  seen.add(v);
  try {
    const array = Array.isArray(v);
    if (depth > 8) return array ? '[...]' : '{...}';
    if (array) {
      let out = '[';
      for (let i = 0; i < v.length; i++) {
        if (out.length > budget) return out;
        if (i > 0) out += ', ';
        out += repr(v[i], depth + 1, seen, budget - out.length);
      }
      return `${out}]`;
    }
    let out = '{';
    let first = true;
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      if (out.length > budget) return out;
      if (!first) out += ', ';
      first = false;
      out += `${pyStrUpTo(k, budget - out.length)}: `;
      out += repr(x, depth + 1, seen, budget - out.length);
    }
    return `${out}}`;
  } finally {
    seen.delete(v);
  }
}

/** Python's `repr(value)` of a JSON-like value, cut to `max` characters with a trailing `...`. */
export function saferepr(value: unknown, max = REPR_MAX): string {
  const text = repr(value, 0, new Set(), max);
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
