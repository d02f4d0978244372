// Realized network figures as structured rows (store table `net`, schema v4): one row per cell attempt that ran
// through the impairment relay, beside the text event 'net-realized' that says the same in words. Loopback cells
// without a relay get none. Bursts of one attempt (QKD batches, an extra energy burst) combine into one row.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../config/load.js';
import { rigSchema } from '../config/rig.js';
import { campaignSchema } from '../config/campaign.js';
import { combineDirections, netFigures, runCampaign, type NetBurst } from '../campaign/runner.js';
import { openStore } from '../store/sqlite.js';
import { makeProfile } from '../net/profiles.js';
import type { DirectionStats } from '../net/relay.js';
import { needRoot } from './services.js';

function profilesFile(dir: string, lines: string[]): string {
  const f = join(dir, 'profiles.yaml');
  writeFileSync(f, ['profiles:', ...lines].join('\n'));
  return f;
}

test('relay: one net row per shaped cell with loss and delay near the configured values; loopback cell: no row', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'qslab-netfig-'));
  const pf = profilesFile(dir, [
    '  lossy10:',
    '    description: test',
    '    delay_ms: { value: 10, source: "test" }',
    '    loss: { model: random, p: 5, source: "test" }',
    '  delay10:',
    '    description: test',
    '    delay_ms: { value: 10, source: "test" }',
  ]);
  const store = openStore(join(dir, 'q.db'));
  try {
    const rig = parseConfig('rig.yaml', 'name: nf\nnodes:\n  - { name: nf-a, kind: virtual, board: esp32, pace: false }\n', rigSchema);
    const campaign = parseConfig('c.yaml', `name: nf\nsuites: [x25519]\nprofiles: [loopback, lossy10, delay10]\nprofiles_file: ${pf}\nshaper: relay\nhandshakes: 30\nrecords: { count: 4, bytes: 256 }\n`, campaignSchema);
    const s = await runCampaign({ rig, campaign, store, quiet: true });
    assert.equal(s.status, 'completed', JSON.stringify(s.failures));
    const rows = store.getNet(s.runId);
    assert.equal(rows.length, 2, 'one row per shaped cell, none for loopback');
    assert.ok(!rows.some((r) => r.profile === 'loopback'));
    assert.equal(store.getEvents(s.runId).filter((e) => e.kind === 'net-realized').length, 2, 'the text event is kept');
    for (const r of rows) {
      assert.equal(r.runId, s.runId);
      assert.equal(r.cellId, `nf-a/x25519/${r.profile}/256B/r1`);
      assert.equal(r.attempt, 1);
      assert.equal(r.node, 'nf-a');
      assert.equal(r.suite, 'x25519');
      assert.equal(r.backend, 'relay');
      assert.equal(r.shaping, undefined);
      assert.equal(r.kernel, undefined);
      assert.equal(r.tcp, undefined);
      assert.equal(r.bursts, 1);
      assert.equal(r.flows, 30, 'one TCP connection per handshake');
      assert.ok(r.up.packets > 30 && r.down.packets > 30, `packets up ${r.up.packets} down ${r.down.packets}`);
      assert.ok(r.up.throughputKbit > 0 && r.down.throughputKbit > 0);
      if (r.rtt) {
        // TCP_INFO on the node↔relay leg (loopback, not shaped): well under the shaped one-way delay
        assert.ok(r.rtt.n > 0 && r.rtt.medianMs >= 0 && r.rtt.medianMs < 10 && r.rtt.p5Ms <= r.rtt.medianMs && r.rtt.medianMs <= r.rtt.p95Ms, JSON.stringify(r.rtt));
      }
    }
    const lossy = rows.find((r) => r.profile === 'lossy10')!;
    const clean = rows.find((r) => r.profile === 'delay10')!;
    assert.deepEqual(lossy.configured, { delayMs: 10, jitterMs: 0, lossModel: 'random', lossPct: 5, rateKbit: 0 });
    assert.deepEqual(clean.configured, { delayMs: 10, jitterMs: 0, lossModel: 'none', rateKbit: 0 });
    // loss: both directions together, 5 % configured (binomial over the loss decisions, seeded per cell)
    // (TCP: every segment and every modelled retransmission takes a loss decision)
    const decisions = lossy.up.packets + lossy.up.retransmitted + lossy.down.packets + lossy.down.retransmitted;
    const lost = lossy.up.lost + lossy.down.lost;
    const realized = lost / decisions;
    t.diagnostic(`lossy10: ${lost} of ${decisions} segments lost (${(100 * realized).toFixed(2)} %), up ${(100 * lossy.up.loss).toFixed(2)} %, down ${(100 * lossy.down.loss).toFixed(2)} %; ` +
      `delay up ${lossy.up.delayMeanMs.toFixed(2)} ± ${lossy.up.delaySdMs.toFixed(2)} ms, down ${lossy.down.delayMeanMs.toFixed(2)} ± ${lossy.down.delaySdMs.toFixed(2)} ms; ` +
      `delay10: up ${clean.up.delayMeanMs.toFixed(2)} ± ${clean.up.delaySdMs.toFixed(2)} ms, down ${clean.down.delayMeanMs.toFixed(2)} ms; rtt ${JSON.stringify(lossy.rtt ?? null)}`);
    assert.ok(realized > 0.015 && realized < 0.10, `realized loss ${(100 * realized).toFixed(2)} % of ${decisions}`);
    assert.equal(lossy.up.retransmitted, lossy.up.lost, 'on TCP every loss is repaired by a modelled retransmission');
    for (const d of [lossy.up, lossy.down]) assert.ok(Math.abs(d.loss - d.lost / (d.packets + d.retransmitted)) < 1e-12, JSON.stringify(d));
    assert.equal(clean.up.lost + clean.down.lost, 0);
    assert.equal(clean.up.loss, 0);
    // delay: no loss → the configured 10 ms per direction (queueing behind a segment adds little);
    // with loss, retransmission waits (RTO ≥ 200 ms, head-of-line) add to the mean
    for (const d of [clean.up, clean.down]) assert.ok(d.delayMeanMs >= 9.9 && d.delayMeanMs < 12, `clean delay ${d.delayMeanMs} ms`);
    for (const d of [lossy.up, lossy.down]) assert.ok(d.delayMeanMs >= 9.9 && d.delayMeanMs < 10 + 0.25 * 200, `lossy delay ${d.delayMeanMs} ms`);
    assert.ok(lossy.up.delaySdMs > clean.up.delaySdMs || lossy.down.delaySdMs > clean.down.delaySdMs, 'retransmissions spread the delay');
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

const stats = (o: Partial<DirectionStats>): DirectionStats => ({
  packets: 0, bytes: 0, delivered: 0, deliveredBytes: 0, dropped: 0, queueDropped: 0, retransmitted: 0, duplicated: 0, reordered: 0, corrupted: 0,
  delayMeanMs: 0, delaySdMs: 0, schedulingLateMs: 0, lossDecisions: 0, losses: 0, realizedLoss: 0, lossBursts: { count: 0, meanLength: 0, maxLength: 0 },
  throughputKbit: 0, ...o,
});

test('bursts of one attempt combine: counts summed, loss from the summed decisions, delay pooled exactly, throughput over active time', () => {
  // two bursts' delay samples, so the pooled mean and SD can be checked against the samples themselves
  const xs = [10, 12, 11, 210, 10, 13], ys = [20, 22, 21, 24];
  const mean = (a: number[]) => a.reduce((p, q) => p + q, 0) / a.length;
  const sd = (a: number[]) => Math.sqrt(a.reduce((p, q) => p + (q - mean(a)) ** 2, 0) / (a.length - 1));
  const a = stats({ packets: 6, delivered: 6, deliveredBytes: 6000, lossDecisions: 7, losses: 1, retransmitted: 1, delayMeanMs: mean(xs), delaySdMs: sd(xs), throughputKbit: 48 });
  const b = stats({ packets: 4, delivered: 4, deliveredBytes: 4000, lossDecisions: 4, losses: 0, delayMeanMs: mean(ys), delaySdMs: sd(ys), throughputKbit: 16 });
  const c = combineDirections([a, b]);
  assert.equal(c.packets, 10);
  assert.equal(c.lost, 1);
  assert.equal(c.retransmitted, 1);
  assert.ok(Math.abs(c.loss - 1 / 11) < 1e-12);
  assert.ok(Math.abs(c.delayMeanMs - mean([...xs, ...ys])) < 1e-9);
  assert.ok(Math.abs(c.delaySdMs - sd([...xs, ...ys])) < 1e-9);
  // 48000 bits in 1000 ms + 32000 bits in 2000 ms
  assert.ok(Math.abs(c.throughputKbit - 80000 / 3000) < 1e-9);
  // one burst: the relay's own figures
  const one = combineDirections([a]);
  assert.deepEqual(one, { packets: 6, lost: 1, loss: 1 / 7, delayMeanMs: a.delayMeanMs, delaySdMs: a.delaySdMs, throughputKbit: 48, retransmitted: 1 });

  const rel = (d: DirectionStats) => ({ protocol: 'tcp' as const, profile: 'p', flows: 3, resets: 1, up: d, down: d });
  const cell = { runId: 'r', cellId: 'n/x25519/p/64B/r1', attempt: 2, node: 'n', suite: 'x25519', profile: 'p' };
  const bursts: NetBurst[] = [
    { rel: rel(a), tcp: { rttMs: [1, 2, 3], sockets: 1, retrans: 0 }, kernel: { shaping: 'kernel (ns): nft random 10%; relay: forwarding only', loss: { up: 0.1, down: 0.2, upPackets: 100, downPackets: 50 }, tcp: { activeOpens: 3, outSegs: 100, inSegs: 90, retransSegs: 9, outRsts: 0 } } },
    { rel: rel(b), tcp: { rttMs: [4, 5], sockets: 2, retrans: 1 }, kernel: { shaping: 'kernel (ns): later phase', loss: { up: 0, down: 0.1, upPackets: 100, downPackets: 150 }, tcp: null } },
  ];
  const nf = netFigures(cell, makeProfile({ name: 'p', delay_ms: 5, loss: { model: 'random', p: 10 } }), bursts, 42);
  assert.equal(nf.backend, 'kernel');
  assert.equal(nf.shaping, 'kernel (ns): nft random 10%; relay: forwarding only');
  assert.equal(nf.bursts, 2);
  assert.equal(nf.flows, 6);
  assert.equal(nf.resets, 2);
  assert.deepEqual(nf.configured, { delayMs: 5, jitterMs: 0, lossModel: 'random', lossPct: 10, rateKbit: 0 });
  assert.deepEqual(nf.kernel, { lossUp: 10 / 200, lossDown: 25 / 200, packetsUp: 200, packetsDown: 200 });
  assert.deepEqual(nf.tcp, { outSegs: 100, retransSegs: 9 });
  assert.deepEqual(nf.rtt, { n: 5, sockets: 3, medianMs: 3, p5Ms: nf.rtt!.p5Ms, p95Ms: nf.rtt!.p95Ms, retrans: 1 });
  assert.ok(nf.rtt!.p5Ms >= 1 && nf.rtt!.p5Ms < 1.5 && nf.rtt!.p95Ms > 4.5 && nf.rtt!.p95Ms <= 5);
  assert.equal(nf.ts, 42);
  // relay only, under a schedule (no configured profile), no RTT sample
  const plain = netFigures(cell, undefined, [{ rel: rel(a), tcp: { rttMs: [], sockets: 0, retrans: 0 } }], 7);
  assert.equal(plain.backend, 'relay');
  for (const k of ['shaping', 'configured', 'kernel', 'tcp', 'rtt'] as const) assert.equal(plain[k], undefined, k);
});

test('as root: kernel-shaped cells get a row each (loopback too: it goes through the relay), with kernel loss and TCP counters', async (t) => {
  if (!needRoot(t)) return;
  const dir = mkdtempSync(join(tmpdir(), 'qslab-knetfig-'));
  const pf = profilesFile(dir, [
    '  kf-lossy:',
    '    description: test',
    '    delay_ms: { value: 5, source: "test" }',
    '    loss: { model: random, p: 10, source: "test" }',
  ]);
  const store = openStore(join(dir, 'q.db'));
  try {
    const rig = parseConfig('rig.yaml', 'name: knf\nnodes:\n  - { name: knf-a, kind: virtual, board: esp32, pace: false }\n', rigSchema);
    const campaign = parseConfig('c.yaml', `name: knf\nsuites: [x25519]\nprofiles: [loopback, kf-lossy]\nprofiles_file: ${pf}\nshaper: kernel\nhandshakes: 15\nrecords: { count: 4, bytes: 256 }\n`, campaignSchema);
    const s = await runCampaign({ rig, campaign, store, quiet: true });
    assert.equal(s.status, 'completed', JSON.stringify(s.failures));
    const rows = store.getNet(s.runId);
    assert.deepEqual(rows.map((r) => r.profile).sort(), ['kf-lossy', 'loopback']);
    for (const r of rows) {
      assert.equal(r.backend, 'kernel');
      assert.match(r.shaping ?? '', /^kernel \(qslab-r[0-9a-f]{10}-\d\): /);
      assert.ok(r.kernel && r.kernel.packetsUp > 0 && r.kernel.packetsDown > 0, JSON.stringify(r.kernel));
      assert.ok(r.tcp && r.tcp.outSegs > 0, JSON.stringify(r.tcp));
      assert.ok(r.up.packets > 0 && r.down.packets > 0);
    }
    const lossy = rows.find((r) => r.profile === 'kf-lossy')!;
    const lo = rows.find((r) => r.profile === 'loopback')!;
    assert.deepEqual(lo.configured, { delayMs: 0, jitterMs: 0, lossModel: 'none', rateKbit: 0 });
    assert.equal(lo.kernel!.lossUp + lo.kernel!.lossDown, 0);
    const k = lossy.kernel!;
    const realized = (k.lossUp * k.packetsUp + k.lossDown * k.packetsDown) / (k.packetsUp + k.packetsDown);
    t.diagnostic(`kernel: ${lossy.shaping}; loss ${(100 * realized).toFixed(2)} % of ${k.packetsUp + k.packetsDown} packets; TCP ${JSON.stringify(lossy.tcp)}; rtt ${JSON.stringify(lossy.rtt ?? null)}`);
    if (/nft random/.test(lossy.shaping!)) {
      // nft took the loss: the kernel counters see it, the relay (delay only) loses nothing, TCP retransmits
      assert.ok(realized > 0.03 && realized < 0.18, `kernel loss ${(100 * realized).toFixed(2)} %`);
      assert.equal(lossy.up.lost + lossy.down.lost, 0);
      assert.ok(lossy.tcp!.retransSegs > 0);
    }
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
