// Inline SVG charts for the lab report: grouped bars with whiskers, empirical CDFs and line charts with an
// optional right-hand axis. The output is a self-contained <svg> string that can be pasted into HTML or
// Markdown as is:
//   - deterministic: same input → same bytes (fixed number formatting, no Date, no random ids; the element
//     ids used by aria-labelledby are a hash of the chart's own content unless `id` is given);
//   - no scripts, no <style>, no external fonts or URLs (only the SVG namespace URI);
//   - accessible: role="img", <title> and <desc> (desc says what is plotted and what was skipped);
//   - every data mark carries a <title> tooltip with its value text and a data-mark attribute
//     (data-mark="bar" | "point" | "cdf"), so a browser test can count marks; decorations (whiskers, lines
//     between points, legend, axes) use data-part instead;
//   - all text is XML-escaped; characters XML 1.0 forbids are replaced by U+FFFD;
//   - empty input renders a "No data" chart; NaN values are skipped and counted in <desc>.
// Colours: the Okabe–Ito colour-blind-safe palette (Okabe & Ito 2008); series beyond eight cycle the colours
// with dashed lines. Axes use "nice" 1-2-5 tick steps (decades, plus 2 and 5 when the range is short, on
// log axes).
//
// Two quantities against one x (e.g. QKD secret key rate and QBER against fibre length): lineChart draws
// them in ONE chart with two y axes. `series` belong to the left axis (solid lines, filled circles); `y2`
// series to the right axis (dashed lines, hollow squares, "(right axis)" in the legend and tooltips). Each
// axis has its own label, unit, range and optional log scale; gridlines follow the left axis only.
import { ecdf, quantile, sortedFinite, type EcdfPoint } from './stats.js';

/** Okabe–Ito palette, ordered for contrast on white (yellow last). */
export const PALETTE = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#000000', '#F0E442'] as const;
const DASHES = ['', '6 3', '2 2', '8 3 2 3'];

const FONT = 11;
const CHAR_W = 6.2; // average advance of an 11 px sans-serif glyph, for layout estimates only

// ---------------------------------------------------------------------------------------------------------
// Text and numbers
// ---------------------------------------------------------------------------------------------------------

/** Escapes text for XML content and double- or single-quoted attributes; invalid XML characters → U+FFFD. */
export function escapeXml(s: string): string {
  return String(s)
    .replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}
const esc = escapeXml;

function stripZeros(s: string): string {
  return s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s;
}

/** Value text: 4 significant digits, exponent form (1.5e-4, 2.3e6) outside [0.001, 10^6). */
export function fmtNum(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (!Number.isFinite(v)) return v > 0 ? '∞' : '-∞';
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e6 || a < 1e-3) {
    const [m, e] = v.toExponential(3).split('e');
    return `${stripZeros(m!)}e${Number(e)}`;
  }
  if (a >= 1000) return String(Math.round(v));
  return stripZeros(v.toPrecision(4));
}

/** Pixel coordinate: rounded to 0.01, never "-0". */
function px(v: number): string {
  const r = Math.round(v * 100) / 100;
  return r === 0 ? '0' : String(r);
}

function axisTitle(label: string, unit?: string): string {
  return unit ? `${label} (${unit})` : label;
}

function withUnit(v: number, unit?: string): string {
  return unit ? `${fmtNum(v)} ${unit}` : fmtNum(v);
}

function truncate(s: string, maxChars: number): string {
  const chars = Array.from(s);
  if (chars.length <= maxChars) return s;
  return maxChars <= 1 ? '…' : `${chars.slice(0, maxChars - 1).join('')}…`;
}

function textWidth(s: string, font = FONT): number {
  return Array.from(s).length * CHAR_W * (font / FONT);
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

function list(names: string[], max = 12): string {
  if (!names.length) return 'none';
  return names.length <= max ? names.join(', ') : `${names.slice(0, max).join(', ')}, … (${names.length - max} more)`;
}

/** FNV-1a 32-bit of a string's UTF-16 code units, as 8 hex digits. */
function fnv1a(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return (h >>> 0).toString(16).padStart(8, '0');
}

// ---------------------------------------------------------------------------------------------------------
// Ticks and scales
// ---------------------------------------------------------------------------------------------------------

export interface Ticks {
  min: number;
  max: number;
  /** Tick positions, ascending; the first is `min` and the last is `max`. */
  ticks: number[];
  /** Label for a tick value. */
  label: (v: number) => string;
}

/** Linear ticks with a 1-2-5 step, at most about `maxTicks` intervals, the range widened to whole steps. */
export function niceTicks(lo: number, hi: number, maxTicks = 6): Ticks {
  if (!(Number.isFinite(lo) && Number.isFinite(hi))) { lo = 0; hi = 1; }
  if (hi < lo) [lo, hi] = [hi, lo];
  if (hi === lo) {
    const d = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    lo -= lo === 0 ? 0 : d;
    hi += d;
  }
  const raw = (hi - lo) / Math.max(1, maxTicks);
  let e = Math.floor(Math.log10(raw));
  const f = raw / 10 ** e;
  let m = f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10;
  if (m === 10) { m = 1; e += 1; }
  const at = (k: number): number => (e >= 0 ? k * m * 10 ** e : (k * m) / 10 ** -e); // exact for small k
  const step = at(1);
  const k0 = Math.floor(lo / step + 1e-9);
  const k1 = Math.ceil(hi / step - 1e-9);
  const ticks: number[] = [];
  for (let k = k0; k <= k1; k++) ticks.push(at(k) + 0); // + 0 turns -0 into 0
  const decimals = Math.max(0, -e);
  const maxAbs = Math.max(Math.abs(ticks[0]!), Math.abs(ticks[ticks.length - 1]!));
  const label = (v: number): string => {
    if (maxAbs < 1e6 && maxAbs >= 1e-3) return v.toFixed(Math.min(decimals, 100));
    if (v === 0) return '0';
    // Exponent form with as many digits as the step needs (one spare, trailing zeros stripped).
    const digits = Math.min(20, Math.max(0, Math.floor(Math.log10(Math.abs(v))) - e + 1));
    const [mant, ex] = v.toExponential(digits).split('e');
    return `${stripZeros(mant!)}e${Number(ex)}`;
  };
  return { min: ticks[0]!, max: ticks[ticks.length - 1]!, ticks, label };
}

/** Log ticks: whole decades around [lo, hi] (lo > 0); 2 and 5 multiples too when the range is ≤ 2 decades. */
export function logTicks(lo: number, hi: number): Ticks {
  if (!(lo > 0 && Number.isFinite(lo))) lo = 1;
  if (!(hi > 0 && Number.isFinite(hi))) hi = lo * 10;
  if (hi < lo) [lo, hi] = [hi, lo];
  const e0 = Math.floor(Math.log10(lo) + 1e-9);
  let e1 = Math.ceil(Math.log10(hi) - 1e-9);
  if (e1 <= e0) e1 = e0 + 1;
  const dec = (k: number, mult = 1): number => Number(`${mult}e${k}`);
  const every = Math.max(1, Math.ceil((e1 - e0) / 8));
  const ticks: number[] = [];
  for (let k = e0; k <= e1; k++) {
    if ((k - e0) % every === 0 || k === e1) ticks.push(dec(k));
    if (e1 - e0 <= 2 && k < e1) ticks.push(dec(k, 2), dec(k, 5));
  }
  ticks.sort((a, b) => a - b);
  return { min: dec(e0), max: dec(e1), ticks, label: fmtNum };
}

interface Scale extends Ticks {
  log: boolean;
  map: (v: number) => number;
}

function scale(t: Ticks, log: boolean, r0: number, r1: number): Scale {
  if (log) {
    const l0 = Math.log10(t.min), l1 = Math.log10(t.max);
    return { ...t, log, map: (v) => r0 + ((Math.log10(v) - l0) / (l1 - l0)) * (r1 - r0) };
  }
  return { ...t, log, map: (v) => r0 + ((v - t.min) / (t.max - t.min)) * (r1 - r0) };
}

function ticksFor(values: number[], log: boolean, includeZero = false, maxTicks = 6): Ticks {
  let lo = Infinity, hi = -Infinity;
  for (const v of values) {
    if (!Number.isFinite(v) || (log && v <= 0)) continue;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (log) return lo === Infinity ? logTicks(1, 10) : logTicks(lo, hi);
  if (lo === Infinity) return niceTicks(0, 1, maxTicks);
  if (includeZero) { lo = Math.min(lo, 0); hi = Math.max(hi, 0); }
  return niceTicks(lo, hi, maxTicks);
}

// ---------------------------------------------------------------------------------------------------------
// Frame: svg element, title, legend, axes
// ---------------------------------------------------------------------------------------------------------

export interface ChartFrame {
  /** Pixel size (default 640 × 360). */
  width?: number;
  height?: number;
  /** Id prefix for the title/desc ids (default: a hash of the chart content). Use when one page holds copies. */
  id?: string;
}

function size(o: ChartFrame): { w: number; h: number } {
  const w = Math.round(Number.isFinite(o.width) ? Math.max(240, o.width!) : 640);
  const h = Math.round(Number.isFinite(o.height) ? Math.max(160, o.height!) : 360);
  return { w, h };
}

function wrap(o: ChartFrame, w: number, h: number, title: string, desc: string, body: string[]): string {
  const content = body.join('\n');
  const id = o.id ? sanitizeId(o.id) : `qs${fnv1a(`${w}x${h}\n${title}\n${desc}\n${content}`)}`;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" role="img" aria-labelledby="${id}-title ${id}-desc" font-family="sans-serif" font-size="${FONT}">`,
    `<title id="${id}-title">${esc(title)}</title>`,
    `<desc id="${id}-desc">${esc(desc)}</desc>`,
    `<rect data-part="background" width="${w}" height="${h}" fill="#ffffff"/>`,
    `<text data-part="title" x="${px(w / 2)}" y="20" text-anchor="middle" font-size="14" font-weight="bold" aria-hidden="true">${esc(truncate(title, Math.floor((w - 16) / (CHAR_W * 14 / FONT))))}</text>`,
    content,
    '</svg>',
  ].filter((s) => s !== '').join('\n');
}

function sanitizeId(s: string): string {
  const t = s.replace(/[^A-Za-z0-9_-]/g, '_');
  return /^[A-Za-z_]/.test(t) ? t : `c${t}`;
}

function noData(o: ChartFrame, title: string, reason: string): string {
  const { w, h } = size(o);
  const body = [
    `<rect data-part="plot" x="16" y="32" width="${w - 32}" height="${h - 48}" fill="#f7f7f7" stroke="#cccccc"/>`,
    `<text data-no-data="true" x="${px(w / 2)}" y="${px(16 + h / 2)}" text-anchor="middle" font-size="14" fill="#555555">No data</text>`,
  ];
  return wrap(o, w, h, title, reason, body);
}

interface LegendItem {
  label: string;
  color: string;
  kind: 'box' | 'line';
  dash?: string;
  marker?: 'circle' | 'square';
}

/** Legend rows under the title; returns the markup and the height it used. */
function legend(items: LegendItem[], x0: number, y0: number, maxX: number): { svg: string; height: number } {
  if (!items.length) return { svg: '', height: 0 };
  const out: string[] = ['<g data-part="legend">'];
  let x = x0, y = y0;
  for (const it of items) {
    const label = truncate(it.label, 48);
    const wItem = 22 + textWidth(label) + 14;
    if (x > x0 && x + wItem > maxX) { x = x0; y += 16; }
    const cy = y + 6;
    if (it.kind === 'box') {
      out.push(`<rect x="${px(x)}" y="${px(y)}" width="14" height="11" fill="${it.color}" stroke="#333333" stroke-width="0.5"/>`);
    } else {
      out.push(`<path d="M${px(x)} ${px(cy)}h18" stroke="${it.color}" stroke-width="2" fill="none"${it.dash ? ` stroke-dasharray="${it.dash}"` : ''}/>`);
      if (it.marker === 'circle') out.push(`<circle cx="${px(x + 9)}" cy="${px(cy)}" r="3" fill="${it.color}"/>`);
      if (it.marker === 'square') out.push(`<rect x="${px(x + 6)}" y="${px(cy - 3)}" width="6" height="6" fill="#ffffff" stroke="${it.color}" stroke-width="1.5"/>`);
    }
    out.push(`<text x="${px(x + 22)}" y="${px(y + 10)}">${esc(label)}</text>`);
    x += wItem;
  }
  out.push('</g>');
  return { svg: out.join('\n'), height: y - y0 + 16 };
}

interface Plot { l: number; t: number; r: number; b: number }

function tickChars(t: Ticks): number {
  return Math.max(...t.ticks.map((v) => t.label(v).length));
}

/** Left (or right) y axis: gridlines (left only), tick marks and labels, rotated axis title. */
function yAxis(s: Scale, p: Plot, title: string, side: 'left' | 'right', w: number): string {
  const out: string[] = [`<g data-part="${side === 'left' ? 'y-axis' : 'y2-axis'}">`];
  for (const v of s.ticks) {
    const y = px(s.map(v));
    if (side === 'left') {
      out.push(`<path d="M${px(p.l)} ${y}H${px(p.r)}" stroke="#e5e5e5" stroke-width="1"/>`);
      out.push(`<path d="M${px(p.l - 4)} ${y}h4" stroke="#333333"/>`);
      out.push(`<text x="${px(p.l - 6)}" y="${y}" dy="0.32em" text-anchor="end">${esc(s.label(v))}</text>`);
    } else {
      out.push(`<path d="M${px(p.r)} ${y}h4" stroke="#333333"/>`);
      out.push(`<text x="${px(p.r + 6)}" y="${y}" dy="0.32em" text-anchor="start">${esc(s.label(v))}</text>`);
    }
  }
  const x = side === 'left' ? p.l : p.r;
  out.push(`<path d="M${px(x)} ${px(p.t)}V${px(p.b)}" stroke="#333333"/>`);
  const cy = px((p.t + p.b) / 2);
  const tx = side === 'left' ? 14 : w - 14;
  const maxChars = Math.floor((p.b - p.t) / CHAR_W);
  out.push(`<text x="${px(tx)}" y="${cy}" text-anchor="middle" transform="rotate(${side === 'left' ? -90 : 90} ${px(tx)} ${cy})">${esc(truncate(title, maxChars))}</text>`);
  out.push('</g>');
  return out.join('\n');
}

function xAxis(s: Scale, p: Plot, title: string): string {
  const out: string[] = ['<g data-part="x-axis">'];
  for (const v of s.ticks) {
    const x = px(s.map(v));
    out.push(`<path d="M${x} ${px(p.b)}v4" stroke="#333333"/>`);
    out.push(`<text x="${x}" y="${px(p.b + 16)}" text-anchor="middle">${esc(s.label(v))}</text>`);
  }
  out.push(`<path d="M${px(p.l)} ${px(p.b)}H${px(p.r)}" stroke="#333333"/>`);
  out.push(`<text x="${px((p.l + p.r) / 2)}" y="${px(p.b + 34)}" text-anchor="middle">${esc(truncate(title, Math.floor((p.r - p.l) / CHAR_W)))}</text>`);
  out.push('</g>');
  return out.join('\n');
}

function colorOf(i: number): { color: string; dash: string } {
  return { color: PALETTE[i % PALETTE.length]!, dash: DASHES[Math.floor(i / PALETTE.length) % DASHES.length]! };
}

function skippedNote(nan: number, nonPos: number, what = 'value'): string {
  const parts: string[] = [];
  if (nan) parts.push(`${plural(nan, `NaN ${what}`)} skipped`);
  if (nonPos) parts.push(`${plural(nonPos, `non-positive ${what}`)} not shown on the log scale`);
  return parts.length ? ` ${parts.join('; ')}.` : '';
}

// ---------------------------------------------------------------------------------------------------------
// Grouped bar chart
// ---------------------------------------------------------------------------------------------------------

export interface Bar {
  series: string;
  value: number;
  /** Whisker ends (e.g. p5 and p95, or a confidence interval); either may be omitted. */
  low?: number;
  high?: number;
  /** Sample size, shown in the tooltip. */
  n?: number;
}

export interface BarGroup {
  label: string;
  bars: Bar[];
}

export interface BarChartOptions extends ChartFrame {
  title: string;
  yLabel: string;
  /** Unit of the y values, shown in the axis title and tooltips ("ms", "µJ", "B"). */
  yUnit?: string;
  /** Optional title under the group labels. */
  xLabel?: string;
  groups: BarGroup[];
  /** Series order and colours (default: order of first appearance); unlisted series are appended. */
  series?: string[];
  /** Logarithmic y axis; non-positive values are then skipped (and counted in <desc>). */
  log?: boolean;
  /** What the whiskers show, e.g. "p5–p95" or "95% CI" (default "range"). */
  whiskerLabel?: string;
}

/**
 * Grouped bars, one colour per series, whiskers from low to high, legend on top. Marks: one
 * `<rect data-mark="bar">` per drawn bar, with data-group, data-series, data-value (and data-low, data-high,
 * data-n when given) and a <title> "group — series: value unit (whisker low–high), n = …".
 */
export function barChart(o: BarChartOptions): string {
  const title = o.title;
  const groups = o.groups ?? [];
  const series: string[] = [...(o.series ?? [])];
  for (const g of groups) for (const b of g.bars) if (!series.includes(b.series)) series.push(b.series);
  const log = !!o.log;
  const wl = o.whiskerLabel ?? 'range';
  const fin = (v: number | undefined): v is number => typeof v === 'number' && Number.isFinite(v);
  let nan = 0, nonPos = 0, total = 0;
  const drawn: { gi: number; si: number; b: Bar }[] = [];
  groups.forEach((g, gi) => {
    for (const b of g.bars) {
      total++;
      if (!fin(b.value)) { nan++; continue; }
      if (log && b.value <= 0) { nonPos++; continue; }
      drawn.push({ gi, si: series.indexOf(b.series), b });
    }
  });
  if (!drawn.length) {
    const why = total ? `No data: ${plural(total, 'bar')}, none drawable.${skippedNote(nan, nonPos)}` : 'No data.';
    return noData(o, title, why);
  }
  const { w, h } = size(o);
  const yVals: number[] = [];
  for (const { b } of drawn) yVals.push(b.value, ...(fin(b.low) ? [b.low] : []), ...(fin(b.high) ? [b.high] : []));
  const yt = ticksFor(yVals, log, !log);
  const leg = legend(series.map((s, i) => ({ label: s, color: colorOf(i).color, kind: 'box' as const })), 16, 32, w - 16);
  const p: Plot = {
    l: 24 + tickChars(yt) * CHAR_W + 8,
    t: 32 + leg.height + 10,
    r: w - 16,
    b: h - (o.xLabel ? 44 : 28),
  };
  const ys = scale(yt, log, p.b, p.t);
  const body: string[] = [leg.svg, yAxis(ys, p, axisTitle(o.yLabel, o.yUnit), 'left', w)];
  // Group labels and baseline.
  const band = (p.r - p.l) / Math.max(1, groups.length);
  const gl: string[] = ['<g data-part="x-axis">'];
  groups.forEach((g, gi) => {
    const cx = p.l + band * (gi + 0.5);
    const shown = truncate(g.label, Math.max(1, Math.floor((band - 4) / CHAR_W)));
    const tip = shown !== g.label ? `<title>${esc(g.label)}</title>` : '';
    gl.push(`<text x="${px(cx)}" y="${px(p.b + 16)}" text-anchor="middle">${tip}${esc(shown)}</text>`);
  });
  const base = log ? p.b : ys.map(0);
  gl.push(`<path d="M${px(p.l)} ${px(p.b)}H${px(p.r)}" stroke="#333333"/>`);
  if (!log && Math.abs(base - p.b) > 0.5) gl.push(`<path data-part="zero" d="M${px(p.l)} ${px(base)}H${px(p.r)}" stroke="#333333"/>`);
  if (o.xLabel) gl.push(`<text x="${px((p.l + p.r) / 2)}" y="${px(p.b + 34)}" text-anchor="middle">${esc(o.xLabel)}</text>`);
  gl.push('</g>');
  body.push(gl.join('\n'));
  // Bars and whiskers.
  const slot = (band * 0.8) / Math.max(1, series.length);
  const marks: string[] = ['<g data-part="bars">'];
  for (const { gi, si, b } of drawn) {
    const x = p.l + band * gi + band * 0.1 + slot * si;
    const bw = Math.max(1, slot - Math.min(2, slot * 0.15));
    const yv = ys.map(b.value);
    const y0 = Math.min(yv, base), y1 = Math.max(yv, base);
    const g = groups[gi]!;
    const range = fin(b.low) || fin(b.high) ? ` (${wl} ${fin(b.low) ? fmtNum(b.low) : '…'}–${fin(b.high) ? fmtNum(b.high) : '…'})` : '';
    const tip = `${g.label} — ${b.series}: ${withUnit(b.value, o.yUnit)}${range}${fin(b.n) ? `, n = ${fmtNum(b.n)}` : ''}`;
    const attrs = [
      `data-mark="bar"`, `data-group="${esc(g.label)}"`, `data-series="${esc(b.series)}"`, `data-value="${fmtNum(b.value)}"`,
      ...(fin(b.low) ? [`data-low="${fmtNum(b.low)}"`] : []), ...(fin(b.high) ? [`data-high="${fmtNum(b.high)}"`] : []),
      ...(fin(b.n) ? [`data-n="${fmtNum(b.n)}"`] : []),
    ].join(' ');
    marks.push(`<rect ${attrs} x="${px(x)}" y="${px(y0)}" width="${px(bw)}" height="${px(Math.max(0, y1 - y0))}" fill="${colorOf(si).color}" stroke="#333333" stroke-width="0.5"><title>${esc(tip)}</title></rect>`);
    if (fin(b.low) || fin(b.high)) {
      const clampLog = (v: number): number => (log && v <= 0 ? ys.min : v);
      const lo = ys.map(clampLog(fin(b.low) ? b.low : b.value));
      const hi = ys.map(clampLog(fin(b.high) ? b.high : b.value));
      const cx = x + bw / 2, cap = Math.min(bw * 0.3, 6);
      marks.push(`<path data-part="whisker" d="M${px(cx)} ${px(lo)}V${px(hi)}M${px(cx - cap)} ${px(lo)}h${px(2 * cap)}M${px(cx - cap)} ${px(hi)}h${px(2 * cap)}" stroke="#222222" stroke-width="1.2" fill="none"/>`);
    }
  }
  marks.push('</g>');
  body.push(marks.join('\n'));
  const desc = `Grouped bar chart of ${axisTitle(o.yLabel, o.yUnit)}${log ? ' (log scale)' : ''}: ${plural(groups.length, 'group')} (${list(groups.map((g) => g.label))}) × ${plural(series.length, 'series', 'series')} (${list(series)}); ${plural(drawn.length, 'bar')} drawn. Whiskers show ${wl}.${skippedNote(nan, nonPos)}`;
  return wrap(o, w, h, title, desc, body);
}

// ---------------------------------------------------------------------------------------------------------
// Empirical CDF chart
// ---------------------------------------------------------------------------------------------------------

/**
 * At most `max` (≥ 2) corners of an ECDF step function, chosen deterministically: for each level
 * k/(max−1), k = 0…max−1, the first point whose p reaches it. Keeps the first and last point; the drawn
 * step curve is within 1/(max−1) of the full one everywhere.
 */
export function downsampleEcdf(points: readonly EcdfPoint[], max: number): EcdfPoint[] {
  const m = Math.max(2, Math.floor(max));
  if (points.length <= m) return points.slice();
  const out: EcdfPoint[] = [];
  let i = 0;
  for (let k = 0; k < m; k++) {
    const level = k / (m - 1);
    while (i < points.length - 1 && points[i]!.p < level) i++;
    if (out[out.length - 1] !== points[i]) out.push(points[i]!);
  }
  return out;
}

export interface CdfSeries {
  label: string;
  values: ArrayLike<number>;
}

export interface CdfChartOptions extends ChartFrame {
  title: string;
  xLabel: string;
  /** Unit of the values ("ms"), in the axis title and tooltips. */
  xUnit?: string;
  series: CdfSeries[];
  /** Logarithmic x axis; non-positive values are skipped (and counted in <desc>). */
  log?: boolean;
  /** Corners per series after downsampling (default 400). */
  maxPoints?: number;
}

/**
 * Empirical CDF step lines, one per series, downsampled to ≤ maxPoints corners each. Marks: one
 * `<path data-mark="cdf">` per series with data, with data-series, data-n (samples) and data-points
 * (corners drawn), and a <title> "label: n = …, median …, p5–p95 …".
 */
export function cdfChart(o: CdfChartOptions): string {
  const title = o.title;
  const log = !!o.log;
  const maxPoints = o.maxPoints ?? 400;
  const unit = o.xUnit;
  let nan = 0, nonPos = 0;
  const prepared = (o.series ?? []).map((s, i) => {
    let sorted = sortedFinite(s.values);
    const bad = s.values.length - sorted.length;
    nan += bad;
    if (log) {
      let k = 0;
      while (k < sorted.length && sorted[k]! <= 0) k++;
      nonPos += k;
      sorted = sorted.subarray(k);
    }
    const pts = downsampleEcdf(ecdf(sorted), maxPoints);
    return { s, i, sorted, pts };
  });
  const withData = prepared.filter((q) => q.sorted.length > 0);
  if (!withData.length) {
    const why = prepared.length ? `No data: ${plural(prepared.length, 'series', 'series')} without drawable values.${skippedNote(nan, nonPos)}` : 'No data.';
    return noData(o, title, why);
  }
  const { w, h } = size(o);
  const xVals: number[] = [];
  for (const q of withData) xVals.push(q.sorted[0]!, q.sorted[q.sorted.length - 1]!);
  const xt = ticksFor(xVals, log);
  const yt = niceTicks(0, 1, 5);
  const leg = legend(prepared.map((q) => {
    const c = colorOf(q.i);
    return { label: q.sorted.length ? q.s.label : `${q.s.label} (no data)`, color: c.color, dash: c.dash, kind: 'line' as const };
  }), 16, 32, w - 16);
  const p: Plot = { l: 24 + tickChars(yt) * CHAR_W + 8, t: 32 + leg.height + 10, r: w - 20, b: h - 44 };
  const xs = scale(xt, log, p.l, p.r);
  const ys = scale(yt, false, p.b, p.t);
  const body: string[] = [leg.svg, yAxis(ys, p, 'Cumulative fraction', 'left', w), xAxis(xs, p, axisTitle(o.xLabel, unit))];
  const marks: string[] = ['<g data-part="cdf">'];
  for (const q of withData) {
    const c = colorOf(q.i);
    const d: string[] = [`M${px(p.l)} ${px(ys.map(0))}`];
    for (const pt of q.pts) {
      d.push(`H${px(xs.map(pt.x))}V${px(ys.map(pt.p))}`);
    }
    d.push(`H${px(p.r)}`);
    const n = q.sorted.length;
    const tip = `${q.s.label}: n = ${n}, median ${withUnit(quantile(q.sorted, 0.5), unit)}, p5–p95 ${fmtNum(quantile(q.sorted, 0.05))}–${withUnit(quantile(q.sorted, 0.95), unit)}, min ${fmtNum(q.sorted[0]!)}, max ${fmtNum(q.sorted[n - 1]!)}`;
    marks.push(`<path data-mark="cdf" data-series="${esc(q.s.label)}" data-n="${n}" data-points="${q.pts.length}" d="${d.join('')}" fill="none" stroke="${c.color}" stroke-width="1.8"${c.dash ? ` stroke-dasharray="${c.dash}"` : ''}><title>${esc(tip)}</title></path>`);
  }
  marks.push('</g>');
  body.push(marks.join('\n'));
  const noDataSeries = prepared.filter((q) => !q.sorted.length).map((q) => q.s.label);
  const desc = `Empirical CDF of ${axisTitle(o.xLabel, unit)}${log ? ' (log scale)' : ''}: ${plural(withData.length, 'series', 'series')} (${list(withData.map((q) => `${q.s.label}, n = ${q.sorted.length}`))}). Each line rises from 0 to 1; steps downsampled to at most ${maxPoints} per series.${noDataSeries.length ? ` Without data: ${list(noDataSeries)}.` : ''}${skippedNote(nan, nonPos)}`;
  return wrap(o, w, h, title, desc, body);
}

// ---------------------------------------------------------------------------------------------------------
// Line chart, optional right-hand axis
// ---------------------------------------------------------------------------------------------------------

export interface LinePoint {
  x: number;
  y: number;
  /** Error bar ends (either may be omitted). */
  low?: number;
  high?: number;
}

export interface LineSeries {
  label: string;
  points: LinePoint[];
}

export interface LineAxis {
  label: string;
  unit?: string;
  log?: boolean;
  series: LineSeries[];
}

export interface LineChartOptions extends ChartFrame {
  title: string;
  xLabel: string;
  xUnit?: string;
  yLabel: string;
  yUnit?: string;
  /** Logarithmic left axis (e.g. secret key rate); non-positive y are then skipped. */
  yLog?: boolean;
  /** Left-axis series. */
  series: LineSeries[];
  /** Right-axis series (e.g. QBER), drawn dashed with hollow square markers. */
  y2?: LineAxis;
  /** What error bars show, e.g. "95% CI" (default "range"). */
  whiskerLabel?: string;
}

/**
 * Lines through points (sorted by x; a point with a NaN y breaks the line), markers and optional error bars.
 * Marks: one `<circle data-mark="point">` (left axis) or `<rect data-mark="point">` (right axis) per drawn
 * point, with data-series, data-axis ("y" | "y2"), data-x, data-y (and data-low, data-high) and a <title>.
 */
export function lineChart(o: LineChartOptions): string {
  const title = o.title;
  const fin = (v: number | undefined): v is number => typeof v === 'number' && Number.isFinite(v);
  const axes: { key: 'y' | 'y2'; label: string; unit?: string; log: boolean; series: LineSeries[] }[] = [
    { key: 'y', label: o.yLabel, unit: o.yUnit, log: !!o.yLog, series: o.series ?? [] },
  ];
  if (o.y2) axes.push({ key: 'y2', label: o.y2.label, unit: o.y2.unit, log: !!o.y2.log, series: o.y2.series ?? [] });
  const wl = o.whiskerLabel ?? 'range';
  let nan = 0, nonPos = 0, total = 0, idx = 0;
  const all = axes.flatMap((ax) => ax.series.map((s) => {
    const i = idx++;
    const pts = s.points.map((pt) => {
      total++;
      const ok = fin(pt.x) && fin(pt.y);
      if (!ok) nan++;
      else if (ax.log && pt.y <= 0) nonPos++;
      return { pt, ok: ok && !(ax.log && pt.y <= 0) };
    }).filter((q) => fin(q.pt.x)).sort((a, b) => a.pt.x - b.pt.x);
    return { ax, s, i, pts };
  }));
  const drawnCount = all.reduce((a, q) => a + q.pts.filter((r) => r.ok).length, 0);
  if (!drawnCount) {
    const why = total ? `No data: ${plural(total, 'point')}, none drawable.${skippedNote(nan, nonPos, 'point')}` : 'No data.';
    return noData(o, title, why);
  }
  const { w, h } = size(o);
  const xVals: number[] = [];
  const yVals: Record<'y' | 'y2', number[]> = { y: [], y2: [] };
  for (const q of all) for (const { pt, ok } of q.pts) {
    if (!ok) continue;
    xVals.push(pt.x);
    yVals[q.ax.key].push(pt.y, ...(fin(pt.low) ? [pt.low] : []), ...(fin(pt.high) ? [pt.high] : []));
  }
  const xt = ticksFor(xVals, false);
  const yt = ticksFor(yVals.y, axes[0]!.log);
  const y2t = o.y2 ? ticksFor(yVals.y2, axes[1]!.log) : undefined;
  const leg = legend(all.map((q) => {
    const c = colorOf(q.i);
    const right = q.ax.key === 'y2';
    return {
      label: `${q.s.label}${right ? ' (right axis)' : ''}`, color: c.color, kind: 'line' as const,
      dash: right ? '6 3' : c.dash, marker: right ? 'square' as const : 'circle' as const,
    };
  }), 16, 32, w - 16);
  const p: Plot = {
    l: 24 + tickChars(yt) * CHAR_W + 8,
    t: 32 + leg.height + 10,
    r: w - (y2t ? 24 + tickChars(y2t) * CHAR_W + 8 : 20),
    b: h - 44,
  };
  const xs = scale(xt, false, p.l, p.r);
  const scales: Record<'y' | 'y2', Scale | undefined> = {
    y: scale(yt, axes[0]!.log, p.b, p.t),
    y2: y2t ? scale(y2t, axes[1]!.log, p.b, p.t) : undefined,
  };
  const body: string[] = [leg.svg, yAxis(scales.y!, p, axisTitle(o.yLabel, o.yUnit), 'left', w)];
  if (scales.y2) body.push(yAxis(scales.y2, p, axisTitle(o.y2!.label, o.y2!.unit), 'right', w));
  body.push(xAxis(xs, p, axisTitle(o.xLabel, o.xUnit)));
  const lines: string[] = ['<g data-part="lines">'];
  const marks: string[] = ['<g data-part="points">'];
  for (const q of all) {
    const ys = scales[q.ax.key]!;
    const right = q.ax.key === 'y2';
    const c = colorOf(q.i);
    const dash = right ? '6 3' : c.dash;
    // Line segments, broken at undrawable points.
    const segs: string[][] = [];
    let cur: string[] = [];
    for (const { pt, ok } of q.pts) {
      if (!ok) { if (cur.length) segs.push(cur); cur = []; continue; }
      cur.push(`${px(xs.map(pt.x))} ${px(ys.map(pt.y))}`);
    }
    if (cur.length) segs.push(cur);
    const d = segs.filter((sg) => sg.length > 1).map((sg) => `M${sg.join('L')}`).join('');
    if (d) lines.push(`<path data-part="line" data-series="${esc(q.s.label)}" d="${d}" fill="none" stroke="${c.color}" stroke-width="1.8"${dash ? ` stroke-dasharray="${dash}"` : ''}><title>${esc(q.s.label)}</title></path>`);
    for (const { pt, ok } of q.pts) {
      if (!ok) continue;
      const cx = xs.map(pt.x), cy = ys.map(pt.y);
      if (fin(pt.low) || fin(pt.high)) {
        const clampLog = (v: number): number => (ys.log && v <= 0 ? ys.min : v);
        const lo = ys.map(clampLog(fin(pt.low) ? pt.low : pt.y)), hi = ys.map(clampLog(fin(pt.high) ? pt.high : pt.y));
        lines.push(`<path data-part="errorbar" d="M${px(cx)} ${px(lo)}V${px(hi)}M${px(cx - 3)} ${px(lo)}h6M${px(cx - 3)} ${px(hi)}h6" stroke="${c.color}" stroke-width="1.2" fill="none"/>`);
      }
      const range = fin(pt.low) || fin(pt.high) ? ` (${wl} ${fin(pt.low) ? fmtNum(pt.low) : '…'}–${fin(pt.high) ? fmtNum(pt.high) : '…'})` : '';
      const tip = `${q.s.label}${right ? ' (right axis)' : ''}: ${o.xLabel} ${withUnit(pt.x, o.xUnit)}, ${q.ax.label} ${withUnit(pt.y, q.ax.unit)}${range}`;
      const attrs = [
        `data-mark="point"`, `data-series="${esc(q.s.label)}"`, `data-axis="${q.ax.key}"`, `data-x="${fmtNum(pt.x)}"`, `data-y="${fmtNum(pt.y)}"`,
        ...(fin(pt.low) ? [`data-low="${fmtNum(pt.low)}"`] : []), ...(fin(pt.high) ? [`data-high="${fmtNum(pt.high)}"`] : []),
      ].join(' ');
      marks.push(right
        ? `<rect ${attrs} x="${px(cx - 3.5)}" y="${px(cy - 3.5)}" width="7" height="7" fill="#ffffff" stroke="${c.color}" stroke-width="1.5"><title>${esc(tip)}</title></rect>`
        : `<circle ${attrs} cx="${px(cx)}" cy="${px(cy)}" r="3.5" fill="${c.color}" stroke="#ffffff" stroke-width="0.8"><title>${esc(tip)}</title></circle>`);
    }
  }
  lines.push('</g>');
  marks.push('</g>');
  body.push(lines.join('\n'), marks.join('\n'));
  const axisDesc = (k: 0 | 1): string => {
    const ax = axes[k]!;
    return `${axisTitle(ax.label, ax.unit)}${ax.log ? ' (log scale)' : ''} on the ${k ? 'right' : 'left'} axis (${list(ax.series.map((s) => s.label))})`;
  };
  const desc = `Line chart against ${axisTitle(o.xLabel, o.xUnit)}: ${axisDesc(0)}${o.y2 ? `; ${axisDesc(1)}` : ''}. ${plural(drawnCount, 'point')} drawn; error bars show ${wl} where given.${skippedNote(nan, nonPos, 'point')}`;
  return wrap(o, w, h, title, desc, body);
}
