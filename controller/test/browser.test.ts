import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { countPdfPages, findChromium, inspectReport, printPdf } from '../report/browser.js';
import { requireService } from './services.js';

const dir = mkdtempSync(join(tmpdir(), 'qslab-browser-'));
after(() => rmSync(dir, { recursive: true, force: true }));

// A self-contained report in miniature: inline CSS, inline SVG, no external anything.
const GOOD = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>qslab report: fixture</title>
<link rel="icon" href="data:,">
<style>body{font:14px sans-serif} table{border-collapse:collapse} td,th{border:1px solid #999;padding:2px 6px}
.bar{fill:#3a6ea5}</style></head>
<body>
<h1>Fixture run</h1>
<h2>Handshake latency</h2>
<table id="t-latency"><caption>Latency per suite (ms)</caption>
<thead><tr><th>suite</th><th>p50</th><th>p99</th></tr></thead>
<tbody><tr><td>x25519</td><td>3.1</td><td>4.0</td></tr><tr><td>x25519mlkem768</td><td>7.3</td><td>9.9</td></tr></tbody>
</table>
<h2>Energy</h2>
<table id="t-energy"><caption>Energy per handshake</caption>
<tr><th colspan="2">node</th><th>mJ</th><th>n</th></tr>
<tr><td>n1</td><td>esp32</td><td>12.5</td><td>100</td></tr>
<tr><td>n2</td><td>nrf52</td><td>8.0</td><td>100</td></tr>
<tr><td>n3</td><td>rp2040</td><td>9.2</td><td>100</td></tr>
</table>
<svg id="fig-latency" xmlns="http://www.w3.org/2000/svg" width="320" height="120" viewBox="0 0 320 120" role="img">
<title>Latency chart</title>
<g><rect class="bar" x="10" y="60" width="60" height="50" data-v="3.1"/>
<rect class="bar" x="90" y="30" width="60" height="80" data-v="7.3"/>
<rect class="bar" x="170" y="20" width="60" height="90" data-v="9.9"/></g>
<text x="10" y="118" font-size="10">suite</text>
</svg>
<script>document.body.dataset.ready = '1';</script>
</body></html>
`;

// Every kind of failure the check must see: console.error, an uncaught error, and outside loads.
const BAD = `<!doctype html>
<html><head><meta charset="utf-8"><title>broken</title><link rel="icon" href="data:,"></head>
<body><h1>Broken</h1>
<img src="http://example.invalid/x.png" alt="">
<img src="sibling.png" alt="">
<script>
console.error('deliberate console error');
fetch('https://api.example.invalid/data.json').catch(() => {});
throw new Error('deliberate page error');
</script>
</body></html>
`;

const goodFile = join(dir, 'good.html');
const badFile = join(dir, 'bad.html');
writeFileSync(goodFile, GOOD);
writeFileSync(badFile, BAD);

const fmt = (ms: number) => `${Math.round(ms)} ms`;

test('browser: findChromium honours QSLAB_CHROMIUM (only there) and reports a missing browser clearly', async () => {
  const saved = process.env.QSLAB_CHROMIUM;
  try {
    process.env.QSLAB_CHROMIUM = join(dir, 'no-such-chromium');
    assert.equal(findChromium(), null);
    await assert.rejects(inspectReport(goodFile), (e: Error) => {
      assert.match(e.message, /no Chromium executable found/);
      assert.match(e.message, /good\.html/);
      assert.match(e.message, /apt-get install chromium/);
      return true;
    });
    process.env.QSLAB_CHROMIUM = goodFile; // exists, but not executable
    assert.equal(findChromium(), null);
  } finally {
    if (saved === undefined) delete process.env.QSLAB_CHROMIUM;
    else process.env.QSLAB_CHROMIUM = saved;
  }
  await assert.rejects(inspectReport(join(dir, 'missing.html')), /missing\.html does not exist/);
});

test('browser: countPdfPages counts /Type /Page, not /Pages', () => {
  const pdf = Buffer.from('%PDF-1.4\n1 0 obj <</Type /Pages /Kids [2 0 R 3 0 R] /Count 2>> endobj\n' +
    '2 0 obj <</Type /Page /Parent 1 0 R>> endobj\n3 0 obj <</Type/Page/Parent 1 0 R>> endobj\n%%EOF\n');
  assert.equal(countPdfPages(pdf), 2);
  // pages hidden in an object stream: the page tree's /Count
  assert.equal(countPdfPages(Buffer.from('%PDF-1.7\n<</Type /Pages /Count 5 /Kids []>>')), 5);
});

test('browser: a self-contained report: tables, svg marks, headings, no errors, no requests, screenshot', async (t) => {
  if (!requireService(t, 'chromium', findChromium() !== null)) return;
  const png = join(dir, 'good.png');
  const r = await inspectReport(goodFile, { screenshot: png });
  t.diagnostic(`launch ${fmt(r.timings.launchMs)}, load ${fmt(r.timings.loadMs)}, inspect total ${fmt(r.timings.totalMs)}`);

  assert.deepEqual(r.consoleErrors, []);
  assert.deepEqual(r.requests, []);
  assert.equal(r.title, 'qslab report: fixture');
  assert.deepEqual(r.headings, ['Fixture run', 'Handshake latency', 'Energy']);
  assert.deepEqual(r.tables, [
    { id: 't-latency', caption: 'Latency per suite (ms)', rows: 3, cols: 3 },
    { id: 't-energy', caption: 'Energy per handshake', rows: 4, cols: 4 },
  ]);
  assert.deepEqual(r.svgs, [{ id: 'fig-latency', title: 'Latency chart', marks: 3 }]);

  const buf = readFileSync(png);
  assert.ok(buf.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])), 'PNG signature');
  assert.ok(buf.length > 5_000, `screenshot is ${buf.length} bytes`);
  assert.ok(buf.readUInt32BE(16) >= 1280, 'PNG width is the viewport width'); // IHDR width

  // another mark convention
  const r2 = await inspectReport(goodFile, { markSelector: 'rect.bar, text' });
  assert.equal(r2.svgs[0]?.marks, 4);
});

test('browser: the check can fail: console.error, page error and outside loads are reported', async (t) => {
  if (!requireService(t, 'chromium', findChromium() !== null)) return;
  const r = await inspectReport(badFile);
  t.diagnostic(`launch ${fmt(r.timings.launchMs)}, load ${fmt(r.timings.loadMs)}, inspect total ${fmt(r.timings.totalMs)}`);

  assert.ok(r.consoleErrors.some((e) => e === 'console.error: deliberate console error'), r.consoleErrors.join('\n'));
  assert.ok(r.consoleErrors.some((e) => e === 'page error: deliberate page error'), r.consoleErrors.join('\n'));
  assert.ok(r.consoleErrors.some((e) => e.startsWith('request failed: http://example.invalid/x.png')),
    r.consoleErrors.join('\n'));
  assert.deepEqual([...r.requests].sort(), [
    'http://example.invalid/x.png',
    'https://api.example.invalid/data.json',
    new URL('sibling.png', `file://${dir}/`).href,
  ].sort());
  assert.deepEqual(r.tables, []);
  assert.deepEqual(r.svgs, []);
  assert.deepEqual(r.headings, ['Broken']);
});

test('browser: printPdf writes an A4 PDF', async (t) => {
  if (!requireService(t, 'chromium', findChromium() !== null)) return;
  const pdfFile = join(dir, 'out', 'good.pdf');
  const profiles = () => new Set(readdirSync(tmpdir()).filter((f) => f.startsWith('playwright_chromiumdev_profile-')));
  const before = profiles();
  const r = await printPdf(goodFile, pdfFile);
  t.diagnostic(`launch ${fmt(r.timings.launchMs)}, load ${fmt(r.timings.loadMs)}, pdf total ${fmt(r.timings.totalMs)}, ` +
    `${r.bytes} bytes, ${r.pages} page(s)`);
  const buf = readFileSync(pdfFile);
  assert.equal(buf.subarray(0, 5).toString('latin1'), '%PDF-');
  assert.equal(r.bytes, statSync(pdfFile).size);
  assert.ok(r.pages >= 1, `pages: ${r.pages}`);
  assert.equal(r.pages, countPdfPages(buf));
  // A4 portrait in points (595.28 x 841.89, Chromium rounds)
  assert.match(buf.toString('latin1'), /\/MediaBox \[0 0 59[45]\.?\d* 84[12]\.?\d*\]/);
  // Playwright's temporary browser profile is gone after the call
  assert.deepEqual([...profiles()].filter((f) => !before.has(f)), []);
});
