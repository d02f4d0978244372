// The campaign's qkd.sweep: simulated QKD links (controller/qkd simulateLink) over protocols × distances × repeats,
// run once per run before the cells, stored in table `qkd_sweep` (schema v4) for the report's key rate / QBER
// against distance figure; seeds are the campaign seed + the repeat index, so a sweep is reproducible.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../config/load.js';
import { rigSchema } from '../config/rig.js';
import { campaignSchema, QKD_SWEEP_BLOCK_BITS } from '../config/campaign.js';
import { runCampaign, runQkdSweep } from '../campaign/runner.js';
import { openStore } from '../store/sqlite.js';
import type { QkdSweepPoint, RunEvent } from '../model.js';
import { problems } from './harness.js';

const campaign = (sweep: string, extra = '') => parseConfig('c.yaml', `name: sw\nsuites: [x25519]\nhandshakes: 2\nrecords: { count: 1, bytes: 16 }\n${extra}qkd:\n  sweep:\n${sweep}`, campaignSchema);

test('qkd.sweep validation: each bad value names file:line:col, the path and a fix; defaults filled in', () => {
  const p = problems(() => campaign([
    '    protocols: [bb84, b92]',
    '    distances_km: [0, -5, 301]',
    '    repeats: 0',
    '    block_bits: 5000',
    '    distance: 10',
  ].join('\n') + '\n'));
  const has = (re: RegExp) => assert.ok(p.some((s) => re.test(s)), `${re}\n${p.join('\n')}`);
  has(/^c\.yaml:7:5: qkd\.sweep: .*Fix: remove "distance"/);
  has(/^c\.yaml:7:23: qkd\.sweep\.protocols\[1\]: .*Fix: use one of: "bb84", "e91"/);
  has(/^c\.yaml:8:23: qkd\.sweep\.distances_km\[1\]: .*Fix: use a value >= 0/);
  has(/^c\.yaml:8:27: qkd\.sweep\.distances_km\[2\]: .*Fix: use a value <= 300/);
  has(/^c\.yaml:9:14: qkd\.sweep\.repeats: .*Fix: use a value >= 1/);
  has(/^c\.yaml:10:17: qkd\.sweep\.block_bits: .*Fix: use a value >= 10000/);
  assert.equal(p.length, 6, p.join('\n'));

  const q = problems(() => campaign('    distances_km: [10, 10]\n    protocols: [e91, e91]\n    repeats: 21\n    block_bits: 20000000\n'));
  const hasQ = (re: RegExp) => assert.ok(q.some((s) => re.test(s)), `${re}\n${q.join('\n')}`);
  hasQ(/^c\.yaml:7:19: qkd\.sweep\.distances_km: a distance is listed twice\. Fix: list each distance once/);
  hasQ(/^c\.yaml:8:16: qkd\.sweep\.protocols: a protocol is listed twice\. Fix: list each protocol once/);
  hasQ(/qkd\.sweep\.repeats: .*Fix: use a value <= 20/);
  hasQ(/qkd\.sweep\.block_bits: .*Fix: use a value <= 10000000/);
  // distances_km is required; 1..30 entries; repeats an integer
  assert.ok(problems(() => campaign('    repeats: 2\n')).some((s) => /^c\.yaml:7:5: qkd\.sweep\.distances_km: .*Fix: add the required key/.test(s)));
  assert.ok(problems(() => campaign('    distances_km: []\n')).some((s) => /qkd\.sweep\.distances_km: .*Fix: give at least 1 item/.test(s)));
  assert.ok(problems(() => campaign(`    distances_km: [${Array.from({ length: 31 }, (_, i) => i).join(', ')}]\n`)).some((s) => /qkd\.sweep\.distances_km: .*Fix: use a value <= 30/.test(s)));
  assert.ok(problems(() => campaign('    distances_km: [1]\n    repeats: 1.5\n')).some((s) => /qkd\.sweep\.repeats: /.test(s)));

  const ok = campaign('    distances_km: [0, 12.5, 300]\n').value;
  assert.deepEqual(ok.qkd.sweep, { protocols: ['bb84'], distances_km: [0, 12.5, 300], repeats: 3, block_bits: QKD_SWEEP_BLOCK_BITS });
  assert.equal(QKD_SWEEP_BLOCK_BITS, 100_000);
  assert.equal(parseConfig('c.yaml', 'name: n\nsuites: [x25519]\nhandshakes: 1\n', campaignSchema).value.qkd.sweep, undefined, 'no sweep unless asked');
});

const DISTANCES = [0, 25, 50, 100, 130, 160];
const SWEEP = `    protocols: [bb84, e91]\n    distances_km: [${DISTANCES.join(', ')}]\n    repeats: 3\n`;
const rig = parseConfig('rig.yaml', 'name: sw\nnodes:\n  - { name: sw-a, kind: virtual, board: esp32, pace: false }\n', rigSchema);

async function runWithSweep(seed: number): Promise<{ points: QkdSweepPoint[]; events: RunEvent[]; status: string; runId: string; ms: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'qslab-sweep-'));
  const store = openStore(join(dir, 'q.db'));
  try {
    const t0 = performance.now();
    const s = await runCampaign({ rig, campaign: campaign(SWEEP, `seed: ${seed}\n`), store, quiet: true });
    const ms = performance.now() - t0;
    return { points: store.getQkdSweep(s.runId), events: store.getEvents(s.runId), status: s.status, runId: s.runId, ms };
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

test('a run with qkd.sweep stores protocols × distances × repeats points before its cells; bb84: QBER rises, key rate falls with distance; same seed, same points', async (t) => {
  const a = await runWithSweep(5);
  assert.equal(a.status, 'completed');
  t.diagnostic(`campaign with a 2 × 6 × 3 sweep (block ${QKD_SWEEP_BLOCK_BITS} bits) and 2 handshakes: ${(a.ms / 1000).toFixed(1)} s`);
  assert.equal(a.points.length, 2 * DISTANCES.length * 3);
  // stored in the order run: protocol, distance, repeat; seed = campaign seed + repeat index
  let i = 0;
  for (const protocol of ['bb84', 'e91']) for (const d of DISTANCES) for (let r = 0; r < 3; r++) {
    const p = a.points[i++]!;
    assert.deepEqual([p.runId, p.protocol, p.distanceKm, p.repeat, p.seed, p.blockBits], [a.runId, protocol, d, r, 5 + r, QKD_SWEEP_BLOCK_BITS]);
    assert.ok(p.qber >= 0 && p.qber <= 0.5 && p.durationS > 0 && p.siftedBits > 0 && p.finalBits >= 0, JSON.stringify(p));
    if (p.finalBits > 0) assert.ok(p.secretKeyRateBps > 0 && p.abortReason === undefined, JSON.stringify(p));
    else assert.ok(p.secretKeyRateBps === 0 && p.abortReason, JSON.stringify(p));
  }
  // one event per protocol, before the handshake server came up (the sweep runs before the cells)
  const sweepEv = a.events.filter((e) => e.kind === 'qkd-sweep');
  assert.equal(sweepEv.length, 2);
  assert.match(sweepEv[0]!.detail, /^bb84: 6 distances × 3 repeats \(block 100000 bits, seeds 5–7\): secret key rate [\d.e+]+ bit\/s at 0 km → [\d.e+]+ bit\/s at 160 km, QBER [\d.]+ % → [\d.]+ % \(means of repeats\); \d+ of 18 links without key, key up to \d+ km; [\d.]+ s$/);
  assert.match(sweepEv[1]!.detail, /^e91: 6 distances × 3 repeats/);
  const firstServerEvent = a.events.findIndex((e) => /^handshake server:/.test(e.detail));
  assert.ok(firstServerEvent > a.events.indexOf(sweepEv[1]!), 'sweep before the cells');

  // bb84 against distance, means over the repeats
  const bb = (d: number) => a.points.filter((p) => p.protocol === 'bb84' && p.distanceKm === d);
  const qber = DISTANCES.map((d) => mean(bb(d).map((p) => p.qber)));
  const rate = DISTANCES.map((d) => mean(bb(d).map((p) => p.secretKeyRateBps)));
  t.diagnostic(`bb84 QBER ${qber.map((q) => (100 * q).toFixed(2)).join(' / ')} %; key rate ${rate.map((r) => r.toPrecision(3)).join(' / ')} bit/s at ${DISTANCES.join(' / ')} km`);
  // QBER: flat within the estimation noise up to ~50 km (misalignment dominates), then rising as dark counts take over
  for (let k = 1; k < DISTANCES.length; k++) assert.ok(qber[k]! > qber[k - 1]! - 0.004, `QBER ${qber[k]} at ${DISTANCES[k]} km vs ${qber[k - 1]} at ${DISTANCES[k - 1]} km`);
  for (const k of [3, 4, 5]) assert.ok(qber[k]! > qber[k - 1]!, `QBER rises beyond 50 km: ${qber.join(', ')}`);
  assert.ok(qber[5]! > qber[0]! + 0.03);
  // key rate: strictly falling while there is key, none at the far end
  for (let k = 1; k < DISTANCES.length; k++) assert.ok(rate[k]! < rate[k - 1]! || rate[k] === 0, `rate ${rate.join(', ')}`);
  assert.ok(rate[0]! > 100 * rate[3]! && rate[3]! > 0, `rate ${rate.join(', ')}`);
  assert.equal(rate[5], 0);
  assert.ok(bb(160).every((p) => /no secret key|QBER .* above/.test(p.abortReason ?? '')), JSON.stringify(bb(160)));
  // e91 too loses key rate with distance
  const e91 = (d: number) => mean(a.points.filter((p) => p.protocol === 'e91' && p.distanceKm === d).map((p) => p.secretKeyRateBps));
  assert.ok(e91(0) > e91(50) && e91(50) > e91(100));

  // the same seed again: the same points (run id aside); another seed: other points
  const b = await runWithSweep(5);
  const strip = (ps: QkdSweepPoint[]) => ps.map(({ runId: _r, ...p }) => p);
  assert.deepEqual(strip(b.points), strip(a.points));
  const other: QkdSweepPoint[] = [];
  await runQkdSweep(campaign(SWEEP, 'seed: 6\n').value, 'x', { addQkdSweep: (p) => other.push(p), addEvent: () => {} }, { quiet: true });
  assert.equal(other.length, a.points.length);
  // seed 6 = seed 5's repeat 1 at repeat 0: shifted by one repeat, and a new last repeat
  const key = (p: QkdSweepPoint) => `${p.protocol}/${p.distanceKm}/${p.seed}`;
  const byKey = new Map(a.points.map((p) => [key(p), p]));
  for (const p of other) {
    const same = byKey.get(key(p));
    if (same) assert.deepEqual({ ...p, runId: '', repeat: 0 }, { ...same, runId: '', repeat: 0 });
  }
  assert.notDeepEqual(strip(other), strip(a.points));
});

test('an interrupted run stops the sweep between two links and keeps what is done', async () => {
  const ac = new AbortController();
  const got: QkdSweepPoint[] = [];
  const c = campaign('    protocols: [bb84, e91]\n    distances_km: [0, 10, 20]\n    repeats: 2\n    block_bits: 10000\n').value;
  const out = await runQkdSweep(c, 'r', { addQkdSweep: (p) => { got.push(p); if (got.length === 4) ac.abort(); }, addEvent: () => {} }, { signal: ac.signal, quiet: true });
  assert.equal(got.length, 4);
  assert.deepEqual(out, got);
});
