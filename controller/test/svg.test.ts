// Proves the inline SVG charts: every output is well-formed XML (checked by the small strict parser below),
// self-contained and accessible (role="img", <title>/<desc> wired by aria-labelledby, no scripts, styles or
// URLs), byte-identical across calls, has exactly one data mark per drawable datum (each with a <title>),
// escapes hostile labels, and degrades to a "No data" chart or a <desc> note on empty and NaN input.
// Also: 1-2-5 ticks, log ticks, ECDF downsampling error bound, and a 10^6-sample CDF chart.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  PALETTE, barChart, cdfChart, downsampleEcdf, escapeXml, fmtNum, lineChart, logTicks, niceTicks,
  type BarChartOptions, type LineChartOptions,
} from '../report/svg.js';
import { ecdf } from '../report/stats.js';
import { Rng } from '../net/relay-rng.js';

// ---------------------------------------------------------------------------------------------------------
// A strict little XML parser: balanced tags, one root, quoted unique attributes, only the five predefined
// entities and character references, no '<' in attribute values, no "]]>" in text.
// ---------------------------------------------------------------------------------------------------------

interface El {
  name: string;
  attrs: Record<string, string>;
  children: (El | string)[];
}

function decode(s: string, where: string): string {
  return s.replace(/&([^;]*);?/g, (m, body: string) => {
    assert.ok(m.endsWith(';'), `unterminated entity in ${where}: ${m}`);
    const named: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
    if (body in named) return named[body]!;
    const num = /^#([0-9]+)$/.exec(body) ?? null;
    const hex = /^#x([0-9a-fA-F]+)$/.exec(body) ?? null;
    assert.ok(num || hex, `unknown entity &${body}; in ${where}`);
    const cp = num ? Number(num[1]) : parseInt(hex![1]!, 16);
    assert.ok(cp === 0x9 || cp === 0xa || cp === 0xd || (cp >= 0x20 && cp <= 0xd7ff) || (cp >= 0xe000 && cp <= 0xfffd) || cp >= 0x10000, `bad char ref ${cp}`);
    return String.fromCodePoint(cp);
  });
}

function parseXml(src: string): El {
  assert.ok(!/[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/.test(src), 'character not allowed in XML');
  const doc: El = { name: '#document', attrs: {}, children: [] };
  const stack: El[] = [doc];
  const nameRe = /[A-Za-z_:][-A-Za-z0-9_:.]*/y;
  let i = 0;
  const readName = (): string => {
    nameRe.lastIndex = i;
    const m = nameRe.exec(src);
    assert.ok(m, `name expected at ${i}: ${JSON.stringify(src.slice(i, i + 20))}`);
    i += m[0].length;
    return m[0];
  };
  const ws = (): number => { const s = i; while (/\s/.test(src[i] ?? '')) i++; return i - s; };
  while (i < src.length) {
    if (src.startsWith('<!--', i)) {
      const j = src.indexOf('-->', i + 4);
      assert.ok(j > 0, 'unterminated comment');
      i = j + 3;
    } else if (src.startsWith('</', i)) {
      i += 2;
      const name = readName();
      ws();
      assert.equal(src[i], '>', `'>' expected after </${name}`);
      i++;
      const top = stack.pop()!;
      assert.equal(name, top.name, `</${name}> closes <${top.name}>`);
      assert.ok(stack.length >= 1, 'close without open');
    } else if (src[i] === '<') {
      assert.ok(!src.startsWith('<!', i) && !src.startsWith('<?', i), 'no doctype / PI expected');
      i++;
      const el: El = { name: readName(), attrs: {}, children: [] };
      for (;;) {
        const sp = ws();
        if (src.startsWith('/>', i)) { i += 2; stack[stack.length - 1]!.children.push(el); break; }
        if (src[i] === '>') { i++; stack[stack.length - 1]!.children.push(el); stack.push(el); break; }
        assert.ok(sp > 0, `whitespace expected before attribute in <${el.name}> at ${i}`);
        const an = readName();
        ws();
        assert.equal(src[i], '=', `'=' expected after ${an}`);
        i++;
        ws();
        const q = src[i];
        assert.ok(q === '"' || q === "'", `quoted value expected for ${an}`);
        const j = src.indexOf(q!, i + 1);
        assert.ok(j > 0, `unterminated value of ${an}`);
        const raw = src.slice(i + 1, j);
        assert.ok(!raw.includes('<'), `'<' in value of ${an}`);
        assert.ok(!(an in el.attrs), `duplicate attribute ${an} on <${el.name}>`);
        el.attrs[an] = decode(raw, `${el.name}@${an}`);
        i = j + 1;
      }
    } else {
      const j = src.indexOf('<', i);
      const raw = src.slice(i, j < 0 ? src.length : j);
      assert.ok(!raw.includes(']]>'), "']]>' in text");
      const text = decode(raw, 'text');
      const parent = stack[stack.length - 1]!;
      assert.ok(parent !== doc || text.trim() === '', 'text outside the root element');
      parent.children.push(text);
      i = j < 0 ? src.length : j;
    }
  }
  assert.equal(stack.length, 1, `unclosed <${stack[stack.length - 1]!.name}>`);
  const roots = doc.children.filter((c): c is El => typeof c !== 'string');
  assert.equal(roots.length, 1, 'exactly one root element');
  return roots[0]!;
}

function walk(el: El, f: (e: El) => void): void {
  f(el);
  for (const c of el.children) if (typeof c !== 'string') walk(c, f);
}
function all(el: El, pred: (e: El) => boolean): El[] {
  const out: El[] = [];
  walk(el, (e) => { if (pred(e)) out.push(e); });
  return out;
}
function textOf(el: El): string {
  return el.children.map((c) => (typeof c === 'string' ? c : textOf(c))).join('');
}
const marks = (root: El, kind?: string): El[] => all(root, (e) => 'data-mark' in e.attrs && (!kind || e.attrs['data-mark'] === kind));
const titleOf = (e: El): string | undefined => {
  const t = e.children.find((c): c is El => typeof c !== 'string' && c.name === 'title');
  return t ? textOf(t) : undefined;
};

/** Parses, then checks the self-contained and accessibility rules every chart must meet. */
function checkChart(svg: string): El {
  const root = parseXml(svg);
  assert.equal(root.name, 'svg');
  assert.equal(root.attrs.xmlns, 'http://www.w3.org/2000/svg');
  assert.equal(root.attrs.role, 'img');
  const elems = root.children.filter((c): c is El => typeof c !== 'string');
  assert.equal(elems[0]!.name, 'title');
  assert.equal(elems[1]!.name, 'desc');
  assert.ok(textOf(elems[0]!).length > 0 && textOf(elems[1]!).length > 0);
  const ids = (root.attrs['aria-labelledby'] ?? '').split(' ');
  assert.deepEqual(ids, [elems[0]!.attrs.id, elems[1]!.attrs.id]);
  // Self-contained: no scripts, styles, embedded documents or links; the namespace URI is the only URL.
  const names = new Set<string>();
  walk(root, (e) => {
    names.add(e.name);
    for (const [k, v] of Object.entries(e.attrs)) {
      assert.ok(!/^on/i.test(k) && !/href$/i.test(k), `attribute ${k}`);
      if (k !== 'xmlns') assert.ok(!/url\(|https?:|javascript:|data:/i.test(v), `${k}="${v}"`);
    }
  });
  for (const bad of ['script', 'style', 'foreignObject', 'image', 'use', 'a', 'iframe', 'link']) assert.ok(!names.has(bad), `<${bad}>`);
  assert.equal(svg.match(/https?:/g)?.length ?? 0, 1);
  // Every data mark has a non-empty tooltip.
  for (const m of marks(root)) assert.ok((titleOf(m) ?? '').length > 0, `mark without <title>: ${JSON.stringify(m.attrs)}`);
  return root;
}

const desc = (root: El): string => textOf(root.children.find((c): c is El => typeof c !== 'string' && c.name === 'desc')!);

// ---------------------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------------------

const SUITES = ['ECDHE-P256', 'X25519', 'X25519MLKEM768', 'ML-KEM-512'];
function bars(): BarChartOptions {
  return {
    title: 'Handshake time by network profile', yLabel: 'Handshake time', yUnit: 'ms', whiskerLabel: 'p5–p95',
    groups: ['loopback', 'wifi', 'lossy'].map((g, gi) => ({
      label: g,
      bars: SUITES.map((s, si) => ({ series: s, value: gi === 1 && si === 2 ? NaN : 10 * (gi + 1) + si, low: 8 + gi, high: 20 + 10 * gi + si, n: 100 + si })),
    })),
  };
}
function qkd(): LineChartOptions {
  const d = [0, 10, 20, 30, 40, 50, 60];
  return {
    title: 'Decoy BB84: key rate and QBER against distance', xLabel: 'Fibre length', xUnit: 'km',
    yLabel: 'Secret key rate', yUnit: 'bit/s', yLog: true,
    series: [
      { label: 'simulated', points: d.map((x) => ({ x, y: 1e5 * 10 ** (-0.02 * x), low: 0.8e5 * 10 ** (-0.02 * x), high: 1.2e5 * 10 ** (-0.02 * x) })) },
      { label: 'measured', points: [{ x: 0, y: 9.1e4 }, { x: 25, y: NaN }, { x: 50, y: 9e3 }, { x: 60, y: 0 }] },
    ],
    y2: { label: 'QBER', unit: '%', series: [{ label: 'QBER', points: d.map((x) => ({ x, y: 1 + x * 0.05 })) }] },
  };
}

// ---------------------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------------------

test('barChart: well-formed, one <rect data-mark="bar"> per finite bar with tooltip, NaN noted in desc', () => {
  const svg = barChart(bars());
  const root = checkChart(svg);
  const m = marks(root, 'bar');
  assert.equal(m.length, 3 * 4 - 1);
  assert.ok(m.every((e) => e.name === 'rect'));
  assert.equal(all(root, (e) => e.attrs['data-part'] === 'whisker').length, 11);
  const one = m.find((e) => e.attrs['data-group'] === 'lossy' && e.attrs['data-series'] === 'X25519')!;
  assert.deepEqual([one.attrs['data-value'], one.attrs['data-low'], one.attrs['data-high'], one.attrs['data-n']], ['31', '10', '41', '101']);
  assert.equal(titleOf(one), 'lossy — X25519: 31 ms (p5–p95 10–41), n = 101');
  assert.ok(!m.some((e) => e.attrs['data-group'] === 'wifi' && e.attrs['data-series'] === 'X25519MLKEM768'));
  assert.match(desc(root), /1 NaN value skipped/);
  assert.match(desc(root), /3 groups .* 4 series/);
  // Series colours come from the Okabe–Ito palette, in series order; the legend lists every series.
  for (const e of m) assert.equal(e.attrs.fill, PALETTE[SUITES.indexOf(e.attrs['data-series']!)]);
  const legend = all(root, (e) => e.attrs['data-part'] === 'legend')[0]!;
  assert.deepEqual(all(legend, (e) => e.name === 'text').map(textOf), SUITES);
  // Axis title carries the unit; ticks are a 1-2-5 sequence starting at 0.
  assert.ok(all(root, (e) => e.name === 'text').some((e) => textOf(e) === 'Handshake time (ms)'));
  // Bars sit on the zero line: taller for larger values.
  const h = (g: string, s: string): number => Number(m.find((e) => e.attrs['data-group'] === g && e.attrs['data-series'] === s)!.attrs.height);
  assert.ok(h('lossy', 'ML-KEM-512') > h('wifi', 'ML-KEM-512') && h('wifi', 'ML-KEM-512') > h('loopback', 'ML-KEM-512'));
});

test('barChart: log scale skips non-positive values (noted), explicit series order, negative values on linear', () => {
  const log = checkChart(barChart({
    title: 'Energy', yLabel: 'Energy per handshake', yUnit: 'mJ', log: true, series: ['b', 'a'],
    groups: [{ label: 'esp32', bars: [{ series: 'a', value: 0.3, low: 0, high: 0.5 }, { series: 'b', value: 45 }] }, { label: 'nrf52', bars: [{ series: 'a', value: -1 }, { series: 'b', value: 4 }] }],
  }));
  assert.equal(marks(log, 'bar').length, 3);
  assert.match(desc(log), /1 non-positive value not shown on the log scale/);
  assert.match(desc(log), /log scale/);
  assert.equal(marks(log, 'bar').find((e) => e.attrs['data-series'] === 'b')!.attrs.fill, PALETTE[0]);
  const neg = checkChart(barChart({ title: 'Delta', yLabel: 'Δ', groups: [{ label: 'g', bars: [{ series: 's', value: -5 }, { series: 't', value: 5 }] }] }));
  const [a, b] = marks(neg, 'bar');
  assert.equal(Number(a!.attrs.y), Number(b!.attrs.y) + Number(b!.attrs.height), 'both bars meet at the zero line');
  assert.equal(all(neg, (e) => e.attrs['data-part'] === 'zero').length, 1);
});

test('cdfChart: one <path data-mark="cdf"> per series with data, ≤ 400 corners, NaN counted', () => {
  const r = new Rng(5);
  const big = Array.from({ length: 20000 }, () => 20 + 5 * r.gaussian());
  const small = [35, 40, NaN, 41, 50, NaN];
  const root = checkChart(cdfChart({ title: 'Latency', xLabel: 'Handshake time', xUnit: 'ms', series: [
    { label: 'classical', values: big }, { label: 'pq', values: small }, { label: 'broken', values: [NaN] },
  ] }));
  const m = marks(root, 'cdf');
  assert.equal(m.length, 2);
  assert.deepEqual(m.map((e) => e.attrs['data-series']), ['classical', 'pq']);
  assert.deepEqual(m.map((e) => e.attrs['data-n']), ['20000', '4']);
  assert.equal(m[0]!.attrs['data-points'], '400');
  assert.equal(m[1]!.attrs['data-points'], '4');
  assert.equal((m[1]!.attrs.d!.match(/V/g) ?? []).length, 4, 'one rise per corner');
  assert.match(titleOf(m[1]!)!, /^pq: n = 4, median 40\.5 ms, p5–p95 35\.75–48\.65 ms, min 35, max 50$/);
  assert.match(desc(root), /3 NaN values skipped/);
  assert.match(desc(root), /Without data: broken/);
  assert.ok(all(root, (e) => e.name === 'text').some((e) => textOf(e) === 'broken (no data)'));
  assert.ok(all(root, (e) => e.name === 'text').some((e) => textOf(e) === 'Handshake time (ms)'));
  // Log x axis: non-positive values skipped and noted.
  const log = checkChart(cdfChart({ title: 'log', xLabel: 'Time', xUnit: 's', log: true, series: [{ label: 's', values: [0, -1, 0.01, 1, 100] }] }));
  assert.equal(marks(log, 'cdf')[0]!.attrs['data-n'], '3');
  assert.match(desc(log), /2 non-positive values not shown on the log scale/);
});

test('lineChart: two y axes, one point mark per drawable point, NaN breaks the line', () => {
  const root = checkChart(lineChart(qkd()));
  const left = marks(root, 'point').filter((e) => e.attrs['data-axis'] === 'y');
  const right = marks(root, 'point').filter((e) => e.attrs['data-axis'] === 'y2');
  assert.equal(left.length, 7 + 2); // measured: NaN skipped, y = 0 not drawable on the log axis
  assert.equal(right.length, 7);
  assert.ok(left.every((e) => e.name === 'circle') && right.every((e) => e.name === 'rect'));
  assert.equal(titleOf(right[2]!), 'QBER (right axis): Fibre length 20 km, QBER 2 %');
  assert.equal(titleOf(left[0]!), 'simulated: Fibre length 0 km, Secret key rate 100000 bit/s (range 80000–120000)');
  assert.match(desc(root), /1 NaN point skipped; 1 non-positive point not shown on the log scale/);
  assert.match(desc(root), /QBER \(%\) on the right axis/);
  assert.equal(all(root, (e) => e.attrs['data-part'] === 'y2-axis').length, 1);
  assert.equal(all(root, (e) => e.attrs['data-part'] === 'errorbar').length, 7);
  // "measured": 0 → NaN at 25 → 50 → (0 on log) : segments of 1 and 1 points, so no line at all.
  const lines = all(root, (e) => e.attrs['data-part'] === 'line');
  assert.deepEqual(lines.map((e) => e.attrs['data-series']), ['simulated', 'QBER']);
  assert.equal((lines[0]!.attrs.d!.match(/M/g) ?? []).length, 1);
  // Unsorted input is drawn in x order; a single axis works without y2.
  const plain = checkChart(lineChart({ title: 't', xLabel: 'x', yLabel: 'y', series: [{ label: 's', points: [{ x: 3, y: 1 }, { x: 1, y: 2 }, { x: 2, y: NaN }, { x: 4, y: 3 }] }] }));
  assert.deepEqual(marks(plain, 'point').map((e) => e.attrs['data-x']), ['1', '3', '4']);
  const d = all(plain, (e) => e.attrs['data-part'] === 'line')[0]!.attrs.d!;
  assert.equal((d.match(/M/g) ?? []).length, 1, 'only 3→4 forms a segment (2 is NaN)');
  assert.equal(all(plain, (e) => e.attrs['data-part'] === 'y2-axis').length, 0);
});

test('deterministic: same input → same bytes; ids derive from content; explicit id is used', () => {
  const r = new Rng(9);
  const vals = Array.from({ length: 3000 }, () => r.gaussian());
  const makers = [() => barChart(bars()), () => lineChart(qkd()), () => cdfChart({ title: 'c', xLabel: 'x', series: [{ label: 'a', values: vals }] }), () => barChart({ title: 'e', yLabel: 'y', groups: [] })];
  const ids = new Set<string>();
  for (const mk of makers) {
    const a = mk(), b = mk();
    assert.equal(a, b);
    ids.add(parseXml(a).attrs['aria-labelledby']!);
  }
  assert.equal(ids.size, makers.length, 'different charts get different ids');
  const withId = parseXml(barChart({ ...bars(), id: '3 fig:1' }));
  assert.equal(withId.attrs['aria-labelledby'], 'c3_fig_1-title c3_fig_1-desc');
  // No locale- or clock-dependent text: every number in coordinates is plain decimal.
  const svg = lineChart(qkd());
  for (const m of svg.matchAll(/ (?:x|y|cx|cy|width|height)="([^"]*)"/g)) assert.match(m[1]!, /^-?\d+(\.\d{1,2})?$/);
});

test('escaping: <, &, quotes and control characters in every label stay text', () => {
  const evil = `<b>&amp; "q" 'a' ]]> \u0001`;
  const root = checkChart(barChart({
    title: `T ${evil}`, yLabel: `Y ${evil}`, yUnit: '<u>', xLabel: `X ${evil}`, whiskerLabel: '"w"',
    groups: [{ label: `G ${evil}`, bars: [{ series: `S ${evil}`, value: 1, low: 0.5, high: 2 }] }],
  }));
  const clean = evil.replace('\u0001', '\uFFFD');
  const m = marks(root, 'bar')[0]!;
  assert.equal(m.attrs['data-group'], `G ${clean}`);
  assert.equal(m.attrs['data-series'], `S ${clean}`);
  assert.equal(titleOf(m), `G ${clean} — S ${clean}: 1 <u> ("w" 0.5–2)`);
  assert.equal(textOf(root.children.find((c): c is El => typeof c !== 'string' && c.name === 'title')!), `T ${clean}`);
  assert.ok(all(root, (e) => e.name === 'text').some((e) => textOf(e) === `Y ${clean} (<u>)`));
  for (const svg of [
    cdfChart({ title: evil, xLabel: evil, xUnit: evil, series: [{ label: evil, values: [1, 2] }] }),
    lineChart({ title: evil, xLabel: evil, yLabel: evil, series: [{ label: evil, points: [{ x: 1, y: 1 }] }], y2: { label: evil, series: [{ label: evil, points: [{ x: 2, y: 2 }] }] } }),
  ]) {
    const r = checkChart(svg);
    assert.ok(!svg.includes('<b>') && !svg.includes('"q"'));
    assert.ok(marks(r).every((e) => e.attrs['data-series'] === clean));
  }
  assert.equal(escapeXml(`a<b&c"d'e>`), 'a&lt;b&amp;c&quot;d&#39;e&gt;');
  assert.equal(escapeXml('\uD800x'), '\uFFFDx');
});

test('empty and all-NaN input render a "No data" chart, never throw', () => {
  const cases: [string, string, RegExp][] = [
    ['bar, no groups', barChart({ title: 'B', yLabel: 'y', groups: [] }), /^No data\.$/],
    ['bar, all NaN', barChart({ title: 'B', yLabel: 'y', groups: [{ label: 'g', bars: [{ series: 's', value: NaN }, { series: 't', value: Infinity }] }] }), /2 NaN values skipped/],
    ['bar, log all ≤ 0', barChart({ title: 'B', yLabel: 'y', log: true, groups: [{ label: 'g', bars: [{ series: 's', value: 0 }] }] }), /1 non-positive value/],
    ['cdf, no series', cdfChart({ title: 'C', xLabel: 'x', series: [] }), /^No data\.$/],
    ['cdf, empty values', cdfChart({ title: 'C', xLabel: 'x', series: [{ label: 'a', values: [] }, { label: 'b', values: [NaN] }] }), /1 NaN value skipped/],
    ['line, no series', lineChart({ title: 'L', xLabel: 'x', yLabel: 'y', series: [] }), /^No data\.$/],
    ['line, no points', lineChart({ title: 'L', xLabel: 'x', yLabel: 'y', series: [{ label: 's', points: [] }], y2: { label: 'q', series: [] } }), /^No data\.$/],
    ['line, NaN points', lineChart({ title: 'L', xLabel: 'x', yLabel: 'y', series: [{ label: 's', points: [{ x: NaN, y: 1 }, { x: 1, y: NaN }] }] }), /2 NaN points skipped/],
  ];
  for (const [what, svg, why] of cases) {
    const root = checkChart(svg);
    assert.equal(marks(root).length, 0, what);
    assert.equal(all(root, (e) => e.attrs['data-no-data'] === 'true').length, 1, what);
    assert.match(desc(root), why, what);
  }
  // Only the right axis has data: still a chart.
  const r = checkChart(lineChart({ title: 'L', xLabel: 'x', yLabel: 'y', series: [], y2: { label: 'q', series: [{ label: 'q', points: [{ x: 1, y: 2 }] }] } }));
  assert.equal(marks(r, 'point').length, 1);
});

test('ticks: 1-2-5 steps covering the data; log ticks at decades (+2, 5 on short ranges)', () => {
  assert.deepEqual(niceTicks(0, 97).ticks, [0, 20, 40, 60, 80, 100]);
  assert.deepEqual(niceTicks(0, 1, 5).ticks, [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.deepEqual(niceTicks(0.013, 0.087).ticks, [0, 0.02, 0.04, 0.06, 0.08, 0.1]);
  assert.deepEqual(niceTicks(0.013, 0.087, 10).ticks, [0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09]);
  assert.deepEqual(niceTicks(-3, 7).ticks, [-4, -2, 0, 2, 4, 6, 8]);
  assert.deepEqual(niceTicks(5, 5).ticks, [4.4, 4.6, 4.8, 5, 5.2, 5.4, 5.6]);
  assert.deepEqual(niceTicks(0, 0).ticks.slice(0, 2), [0, 0.2]);
  assert.equal(niceTicks(0, 0.5).label(0.1), '0.1');
  assert.equal(niceTicks(0, 3e6).label(2e6), '2e6');
  const r = new Rng(2);
  for (let k = 0; k < 300; k++) {
    const mag = 10 ** Math.floor(r.next() * 12 - 6);
    const lo = (r.next() - 0.5) * mag;
    const hi = lo + (0.001 + r.next()) * mag;
    const t = niceTicks(lo, hi);
    assert.ok(t.min <= lo && t.max >= hi, `covers [${lo}, ${hi}]`);
    assert.ok(t.ticks.length >= 2 && t.ticks.length <= 9, `${t.ticks.length} ticks`);
    const step = t.ticks[1]! - t.ticks[0]!;
    const mant = Number((step / 10 ** Math.floor(Math.log10(step) + 1e-9)).toPrecision(6));
    assert.ok([1, 2, 5].includes(mant), `step ${step}`);
    assert.equal(new Set(t.ticks.map(t.label)).size, t.ticks.length, 'distinct labels');
  }
  // Narrow ranges far from zero still get distinct labels (fixed or exponent form with enough digits).
  for (const [lo, hi] of [[1234.56, 1234.5600001], [1e9, 1e9 + 50], [2e-7, 2.0001e-7], [-5e12, -4.9e12]] as const) {
    const t = niceTicks(lo, hi);
    assert.equal(new Set(t.ticks.map(t.label)).size, t.ticks.length, `labels of [${lo}, ${hi}]: ${t.ticks.map(t.label).join(' ')}`);
  }
  assert.deepEqual(niceTicks(1e9, 1e9 + 50).ticks.map(niceTicks(1e9, 1e9 + 50).label), ['1e9', '1.00000001e9', '1.00000002e9', '1.00000003e9', '1.00000004e9', '1.00000005e9']);
  assert.deepEqual(logTicks(0.3, 45).ticks, [0.1, 1, 10, 100]);
  assert.deepEqual(logTicks(0.3, 9).ticks, [0.1, 0.2, 0.5, 1, 2, 5, 10]);
  assert.deepEqual(logTicks(3, 4).ticks, [1, 2, 5, 10]);
  assert.deepEqual(logTicks(1e-9, 1e9).ticks, [1e-9, 1e-6, 1e-3, 1, 1e3, 1e6, 1e9]);
  assert.equal(logTicks(1e-3, 1e6).label(1e-4), '1e-4');
});

test('fmtNum: fixed 4-significant-digit value text', () => {
  assert.deepEqual([0, -0, 1, 12.5, 0.1 + 0.2, 1234.5, 999999, 1e6, 0.00012346, -2.5e-7, NaN, Infinity].map(fmtNum),
    ['0', '0', '1', '12.5', '0.3', '1235', '999999', '1e6', '1.235e-4', '-2.5e-7', 'NaN', '∞']);
});

test('downsampleEcdf: ≤ max corners, ends kept, step curve within 1/(max−1); 10^6-sample chart is quick', (t) => {
  const r = new Rng(4);
  const full = ecdf(Array.from({ length: 50000 }, () => Math.round(r.gaussian() * 1000) / 10));
  for (const max of [2, 10, 400]) {
    const d = downsampleEcdf(full, max);
    assert.ok(d.length <= max);
    assert.equal(d[0], full[0]);
    assert.equal(d[d.length - 1], full[full.length - 1]);
    // Drawn value at x = p of the last kept corner ≤ x.
    let j = 0, worst = 0;
    for (const pt of full) {
      while (j + 1 < d.length && d[j + 1]!.x <= pt.x) j++;
      worst = Math.max(worst, pt.p - d[j]!.p);
    }
    assert.ok(worst < 1 / (max - 1) + 1e-12, `max ${max}: error ${worst}`);
  }
  assert.deepEqual(downsampleEcdf(full.slice(0, 3), 400), full.slice(0, 3));
  const million = Array.from({ length: 1_000_000 }, () => r.gaussian());
  const t0 = performance.now();
  const svg = cdfChart({ title: 'big', xLabel: 'x', series: [{ label: 'a', values: million }, { label: 'b', values: million.map((v) => v + 1) }] });
  const ms = performance.now() - t0;
  t.diagnostic(`cdfChart 2 × 1e6 values: ${ms.toFixed(0)} ms, ${svg.length} bytes`);
  const root = checkChart(svg);
  assert.deepEqual(marks(root, 'cdf').map((e) => e.attrs['data-points']), ['400', '400']);
  assert.ok(ms < 3000, `${ms} ms`);
});
