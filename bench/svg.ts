// Line charts as SVG text for BENCHMARKS.md (soak memory curves, scale plots): no browser, no dependency.

/** One line: label and (x, y) points. */
export interface Series {
  label: string;
  points: Array<[number, number]>;
  dashed?: boolean;
}

/** One panel of a figure. */
export interface Chart {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  /** Log-scale x axis (scale plots: 1,000 … 1,000,000). */
  logX?: boolean;
  /** Force the y axis to start at 0. @defaultValue true */
  zeroY?: boolean;
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#17becf'];
const W = 460;
const H = 280;
const M = { left: 62, right: 14, top: 30, bottom: 72 };

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Round tick values covering [lo, hi]. */
function ticks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((f) => f * mag).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

function fmt(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e6) return `${+(v / 1e6).toPrecision(3)}M`;
  if (a >= 1e3) return `${+(v / 1e3).toPrecision(3)}k`;
  return `${+v.toPrecision(3)}`;
}

function panel(c: Chart, ox: number, oy: number): string {
  const pts = c.series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!c.logX || x > 0));
  const out: string[] = [`<g transform="translate(${ox},${oy})">`, `<text x="${W / 2}" y="18" text-anchor="middle" font-size="13" font-weight="bold">${esc(c.title)}</text>`];
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  if (!pts.length) {
    out.push(`<text x="${W / 2}" y="${H / 2}" text-anchor="middle" font-size="12">no data</text></g>`);
    return out.join('\n');
  }
  const tx = (x: number) => (c.logX ? Math.log10(x) : x);
  let x0 = Math.min(...pts.map((p) => tx(p[0])));
  let x1 = Math.max(...pts.map((p) => tx(p[0])));
  if (x1 === x0) x1 = x0 + 1;
  let y0 = c.zeroY === false ? Math.min(...pts.map((p) => p[1])) : 0;
  let y1 = Math.max(...pts.map((p) => p[1]));
  if (y1 === y0) y1 = y0 + 1;
  y1 += (y1 - y0) * 0.08;
  if (c.zeroY === false) y0 -= (y1 - y0) * 0.05;
  const sx = (x: number) => M.left + ((tx(x) - x0) / (x1 - x0)) * pw;
  const sy = (y: number) => M.top + ph - ((y - y0) / (y1 - y0)) * ph;
  out.push(`<rect x="${M.left}" y="${M.top}" width="${pw}" height="${ph}" fill="none" stroke="#999"/>`);
  for (const v of ticks(y0, y1)) {
    if (v < y0 || v > y1) continue;
    out.push(`<line x1="${M.left}" x2="${M.left + pw}" y1="${sy(v).toFixed(1)}" y2="${sy(v).toFixed(1)}" stroke="#eee"/>`, `<text x="${M.left - 5}" y="${(sy(v) + 4).toFixed(1)}" text-anchor="end" font-size="10">${fmt(v)}</text>`);
  }
  const xt = c.logX ? Array.from({ length: Math.floor(x1) - Math.ceil(x0) + 1 }, (_, i) => 10 ** (Math.ceil(x0) + i)) : ticks(x0, x1);
  for (const v of xt) out.push(`<text x="${sx(v).toFixed(1)}" y="${M.top + ph + 14}" text-anchor="middle" font-size="10">${fmt(v)}</text>`);
  out.push(`<text x="${M.left + pw / 2}" y="${M.top + ph + 30}" text-anchor="middle" font-size="11">${esc(c.xLabel)}</text>`);
  out.push(`<text transform="translate(14,${M.top + ph / 2}) rotate(-90)" text-anchor="middle" font-size="11">${esc(c.yLabel)}</text>`);
  c.series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    const ps = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!c.logX || x > 0));
    if (ps.length) {
      const d = ps.map(([x, y], k) => `${k ? 'L' : 'M'}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ');
      out.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="1.6"${s.dashed ? ' stroke-dasharray="5,3"' : ''}/>`);
      if (ps.length <= 12) for (const [x, y] of ps) out.push(`<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="2.5" fill="${color}"/>`);
    }
    const lx = M.left + (i % 3) * (pw / 3);
    const ly = M.top + ph + 46 + Math.floor(i / 3) * 13;
    out.push(`<line x1="${lx}" x2="${lx + 16}" y1="${ly - 4}" y2="${ly - 4}" stroke="${color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5,3"' : ''}/>`, `<text x="${lx + 20}" y="${ly}" font-size="10">${esc(s.label)}</text>`);
  });
  out.push('</g>');
  return out.join('\n');
}

/** A figure of panels, `cols` a row, with a caption line under the title. */
export function figure(title: string, caption: string, charts: Chart[], cols = 2): string {
  const rows = Math.max(1, Math.ceil(charts.length / cols));
  const width = W * Math.min(cols, Math.max(1, charts.length));
  const top = 44;
  const height = top + rows * H;
  const parts = charts.map((c, i) => panel(c, (i % cols) * W, top + Math.floor(i / cols) * H));
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="${width / 2}" y="18" text-anchor="middle" font-size="15" font-weight="bold">${esc(title)}</text>`,
    `<text x="${width / 2}" y="35" text-anchor="middle" font-size="11" fill="#555">${esc(caption)}</text>`,
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}
