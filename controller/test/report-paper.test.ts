// The lab report end to end: a small cut of fixtures/campaigns/paper-tables.yaml runs on the virtual rig (RSA,
// ML-KEM and the QKD hybrid on an ESP32 and a Pi 4, two paper network profiles, PPK2/INA226 energy, a QKD
// distance sweep), then `writeReport` writes HTML/PDF/Markdown/CSV. Checked: every claim of Tables 1, 2 and 4 has
// a measured value or a reason; claims for cells the cut did not run say so; the HTML opened in headless Chromium
// has its tables and figures with data marks, no console errors and no outside requests (screenshot kept under
// reports/out/tests/); the PDF exists; two reports of the same store are byte-identical; --compare of two runs
// gives a Mann-Whitney table, and a run compared with itself finds nothing significant.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../config/load.js';
import { rigSchema } from '../config/rig.js';
import { campaignSchema } from '../config/campaign.js';
import { runCampaign } from '../campaign/runner.js';
import { openStore } from '../store/sqlite.js';
import { buildReport, writeReport } from '../report/report.js';
import { writeCompare, compareRuns } from '../report/compare.js';
import { findChromium, inspectReport } from '../report/browser.js';
import { ROOT } from '../paths.js';
import { requireService } from './services.js';

const dir = mkdtempSync(join(tmpdir(), 'qslab-report-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));
const ARTIFACTS = join(ROOT, 'reports', 'out', 'tests');

const RIG = `name: report-rig
nodes:
  - { name: esp32-a, kind: virtual, board: esp32, baud: 115200, battery: { capacity_mah: 2000, nominal_v: 3.7 } }
  - { name: rpi4-a, kind: virtual, board: rpi4, baud: 115200, battery: { capacity_mah: 10000, nominal_v: 3.7 } }
meters:
  - { name: ppk2-a, kind: ppk2, node: esp32-a, emulated: true, source_mv: 3300, marker_channel: 0 }
`;
const CAMPAIGN = (seed: number) => `name: paper-cut
seed: ${seed}
suites: [rsa2048, mlkem768-mldsa65, qkd-mlkem768]
nodes: all
profiles: [paper-iot-wifi, paper-5g-quantum-sim]
handshakes: 6
records: { count: 3, bytes: 256, refresh: 2 }
power: { target_rel_err: 0.5, max_ops: 50 }
qkd:
  rate_bps: 50000
  sweep: { protocols: [bb84], distances_km: [0, 25, 50], repeats: 2, block_bits: 100000 }
timeouts: { idle_s: 30, cell_s: 300 }
`;

function load(campaign: string) {
  return {
    rig: { file: 'report-rig.yaml', text: RIG, value: parseConfig('report-rig.yaml', RIG, rigSchema).value },
    campaign: { file: 'paper-cut.yaml', text: campaign, value: parseConfig('paper-cut.yaml', campaign, campaignSchema).value },
  };
}

test('paper report: tables with reasons, figures in Chromium, PDF, deterministic, compare', { timeout: 480_000 }, async (t) => {
  const store = openStore(join(dir, 'q.db'));
  try {
    const a = await runCampaign({ ...load(CAMPAIGN(1)), store, quiet: true });
    assert.equal(a.status, 'completed', JSON.stringify(a.failures));
    const { results, figs } = buildReport(store, a.runId);
    const byId = new Map(results.map((r) => [r.claim.id, r]));
    // Every Table 1, 2, 4 claim: a measurement or a reason.
    for (const r of results.filter((x) => 'table' in x.claim.ref && [1, 2, 4].includes(x.claim.ref.table))) {
      if (r.judgement.status === 'not measured') assert.ok(r.judgement.reason.length > 20, `${r.claim.id} has a reason`);
      else assert.ok(r.measured && r.measured.n > 0, `${r.claim.id} measured`);
    }
    // What the cut ran is measured; what it did not run says so.
    for (const id of ['t1.esp32-rsa.enc_latency_ms', 't1.esp32-kyber.ram_pct', 't1.esp32-qkd.cpu_pct', 't2.rsa.rtt_ms', 't2.kyber.throughput_kbps', 't2.rsa.packet_loss_pct', 't4.qkd-bb84-kyber.keygen_ms', 't4.qkd-bb84-kyber.success_pct', 't1.esp32-rsa.battery_pct_per_100']) {
      const r = byId.get(id)!;
      assert.notEqual(r.judgement.status, 'not measured', `${id}: ${r.judgement.reason}`);
    }
    assert.equal(byId.get('t1.esp32-rsa.enc_latency_ms')!.measured!.n, 6, 'six handshakes of rsa2048 on the esp32 over paper-iot-wifi');
    assert.match(byId.get('t1.rpi-ecc.ram_pct')!.judgement.reason, /no successful operations of ecdhe-p256-ecdsa on rpi4 over paper-iot-wifi/);
    assert.notEqual(byId.get('t4.rsa2048.keygen_ms')!.judgement.status, 'not measured');
    assert.equal(byId.get('t3.grover.kyber')!.judgement.status, 'not measured');
    assert.equal(byId.get('h.key_reuse')!.judgement.status, 'reproduced', byId.get('h.key_reuse')!.judgement.reason);
    assert.equal(byId.get('h.decrypt_failures')!.judgement.status, 'reproduced', byId.get('h.decrypt_failures')!.judgement.reason);
    const qkdFig = figs.list.find((f) => f.id === 'qkd-distance')!;
    assert.ok((qkdFig.svg.match(/data-mark="point"/g) ?? []).length >= 4, `QKD figure has rate and QBER points: ${qkdFig.caption} ${qkdFig.svg.slice(0, 600)}`);

    const out1 = join(dir, 'out1');
    const out2 = join(dir, 'out2');
    const chromium = findChromium();
    const r1 = await writeReport(store, a.runId, out1, { pdf: chromium ? 'require' : 'never' });
    const r2 = await writeReport(store, a.runId, out2, { pdf: 'never' });
    for (const f of ['report.html', 'report.md', 'table1.csv', 'table2.csv', 'table3.csv', 'table4.csv', 'headline.csv', 'summary.csv']) {
      assert.equal(readFileSync(join(r1.dir, f), 'utf8'), readFileSync(join(r2.dir, f), 'utf8'), `${f} is the same for the same store`);
    }
    assert.deepEqual(readdirSync(join(r1.dir, 'figures')).sort(), readdirSync(join(r2.dir, 'figures')).sort());
    const t1 = readFileSync(join(r1.dir, 'table1.csv'), 'utf8').trim().split('\n');
    assert.equal(t1.length, 17, 'header + the 16 cells of Table 1');
    assert.match(readFileSync(r1.markdown, 'utf8'), /!\[Figure 2 — Key generation time by suite\]\(figures\/fig2-keygen\.svg\)/);

    if (!requireService(t, 'chromium', chromium !== null)) return;
    assert.ok(r1.pdf && readFileSync(r1.pdf).subarray(0, 5).toString() === '%PDF-', 'the PDF is written');
    mkdirSync(ARTIFACTS, { recursive: true });
    const shot = join(ARTIFACTS, 'report-paper.png');
    const page = await inspectReport(r1.html, { screenshot: shot, markSelector: '[data-mark]' });
    assert.deepEqual(page.consoleErrors, [], 'no console errors');
    assert.deepEqual(page.requests, [], 'the report loads nothing');
    for (const id of ['table1', 'table2', 'table3', 'table4', 'headline']) assert.ok(page.tables.some((x) => x.id === id && x.rows > 1), `table ${id} rendered`);
    assert.equal(page.tables.find((x) => x.id === 'table3')!.rows, 21);
    const svgs = page.svgs.filter((s) => s.marks > 0);
    assert.ok(svgs.length >= 7, `figures with data marks: ${page.svgs.map((s) => `${s.title}:${s.marks}`).join(', ')}`);
    assert.ok(page.headings.includes('The seed paper, measured'));
    t.diagnostic(`screenshot: ${shot}; ${page.tables.length} tables, ${page.svgs.length} svgs`);

    // A second run (another seed) and the comparison.
    const b = await runCampaign({ ...load(CAMPAIGN(2)), store, quiet: true });
    assert.equal(b.status, 'completed');
    const cmp = writeCompare(store, a.runId, b.runId, join(dir, 'cmp'));
    assert.ok(cmp.rows >= 12, `rows ${cmp.rows}`);
    const csv = readFileSync(cmp.csv, 'utf8');
    assert.match(csv, /^metric,unit,suite,board,profile,n_a,n_b,median_a,median_b/);
    const self = compareRuns(store, a.runId, a.runId);
    assert.ok(self.length > 0 && self.every((r) => !r.significant && r.p > 0.9), 'a run against itself: nothing significant');
    const cpage = await inspectReport(cmp.html, { markSelector: '[data-mark]' });
    assert.deepEqual(cpage.consoleErrors, []);
    assert.ok(cpage.tables.some((x) => x.id === 'compare' && x.rows === cmp.rows + 1));
  } finally {
    store.close();
  }
});
