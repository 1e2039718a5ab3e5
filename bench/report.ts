// Benchmark results: rows (figure, same-run baseline, ratio, target), stats helpers, table and JSON output.

/** One measured figure next to the baseline it is judged against. */
export interface BenchRow {
  /** Case number and name, e.g. `3 embedded`. */
  case: string;
  /** What was measured, e.g. `asynx sqlite -c 2 end to end`. */
  metric: string;
  value: number | null;
  unit: string;
  /** The same-run baseline (raw client, Celery, the ideal) and its label. */
  baseline?: { label: string; value: number | null };
  /** value / baseline (or baseline / value where lower is better), the headline. */
  ratio?: number | null;
  /** The issue's target for this row, and whether it is met. */
  target?: string;
  met?: boolean | null;
  note?: string;
}

export function median(xs: number[]): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Nearest-rank percentile, p in 0..100. */
export function percentile(xs: number[], p: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const k = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[k]!;
}

function num(v: number | null | undefined, unit = ''): string {
  if (v === null || v === undefined || Number.isNaN(v)) return '—';
  const abs = Math.abs(v);
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : 3;
  return `${v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })}${unit ? ` ${unit}` : ''}`;
}

export function formatTable(rows: BenchRow[]): string {
  const cells = rows.map((r) => [
    r.case,
    r.metric,
    num(r.value, r.unit),
    r.baseline ? `${num(r.baseline.value, r.unit)} (${r.baseline.label})` : '',
    r.ratio === undefined ? '' : r.ratio === null ? '—' : r.ratio.toFixed(2),
    r.target ? `${r.target} ${r.met === null || r.met === undefined ? '?' : r.met ? 'met' : 'NOT met'}` : '',
    r.note ?? '',
  ]);
  const head = ['case', 'measured', 'value', 'baseline (same run)', 'ratio', 'target', 'note'];
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) => c.map((x, i) => x.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(line)].join('\n');
}

/** Markdown version of the table for BENCHMARKS.md (a `|` inside a cell is escaped). */
export function formatMarkdown(rows: BenchRow[]): string {
  const cell = (s: string) => s.replace(/\|/g, '\\|');
  const head = '| case | measured | value | baseline (same run) | ratio | target | note |\n|---|---|---|---|---|---|---|';
  const body = rows.map((r) =>
    `| ${r.case} | ${cell(r.metric)} | ${num(r.value, r.unit)} | ${r.baseline ? `${num(r.baseline.value, r.unit)} (${r.baseline.label})` : ''} | ${r.ratio === undefined ? '' : r.ratio === null ? '—' : r.ratio.toFixed(2)} | ${r.target ? `${r.target} ${r.met === null || r.met === undefined ? '?' : r.met ? '✅' : '❌'}` : ''} | ${cell(r.note ?? '')} |`,
  );
  return [head, ...body].join('\n');
}

/** ratio = a / b, or null when either is missing. */
export function ratio(a: number | null | undefined, b: number | null | undefined): number | null {
  if (a === null || a === undefined || b === null || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0) return null;
  return a / b;
}

/** A row saying a measurement could not be taken (the pool is not built, a server is missing …). */
export function failedRow(caseName: string, metric: string, err: unknown): BenchRow {
  return { case: caseName, metric: `${metric}: failed`, value: null, unit: '', note: (err instanceof Error ? err.message : String(err)).split('\n')[0]!.slice(0, 200) };
}

/** `value ≥ min` (or ≤ max when `lower`), null when the value is missing. */
export function meets(value: number | null | undefined, bound: number, lower = false): boolean | null {
  if (value === null || value === undefined || !Number.isFinite(value)) return null;
  return lower ? value <= bound : value >= bound;
}
