// Proves the PPK2 driver speaks Nordic's protocol: metadata text parses to the calibration (with Nordic's
// fallbacks); hand-made words decode and convert per range to hand-computed currents; over a real pty the stream
// runs at 100 kS/s (measured over > 1 s), every sample equals the source within one ADC step across all five
// auto-ranged ranges, D0/D2 marker levels arrive with the samples; lost samples, a garbled word and lost bytes
// are counted and time stays true across them; unplug/replug re-reads metadata and streams again.
import { test } from 'node:test';
import { until, waitEvent } from './harness.js';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  decodePpk2Word, parsePpk2Metadata, Ppk2Driver, ppk2Current, PPK2_ADC_MULT, PPK2_CMD, PPK2_DEFAULT_CAL, PPK2_SAMPLE_MS,
} from '../drivers/meter-ppk2.js';
import { hostNow, type SampleBatch } from '../drivers/meter.js';
import { EMULATOR_CAL, Ppk2Emulator, ppk2Encode, ppk2MetadataText } from '../virtual/ppk2.js';
import { concatBatches, windowsFromMarkers } from '../power/energy.js';



/** 50 ms blocks cycling through one level per range, so auto-ranging visits all five. */
const LEVELS = [40e-6, 3e-3, 40e-3, 0.35, 2.0];
const level = (t: number): number => LEVELS[Math.floor(t / 50) % LEVELS.length]!;

async function rig(link?: string) {
  const emu = new Ppk2Emulator({ link, source: (t) => ({ v: 3.3, a: level(t) }) });
  const path = await emu.start();
  const drv = new Ppk2Driver({ path, vddMv: 3300 });
  const batches: SampleBatch[] = [];
  drv.on('samples', (b: SampleBatch) => batches.push(b));
  const warnings: string[] = [];
  drv.on('warning', (w: string) => warnings.push(w));
  return { emu, drv, batches, warnings };
}

test('metadata: calibration per range, Nordic fallbacks for missing/zero/nan values', () => {
  const m = parsePpk2Metadata(ppk2MetadataText(EMULATOR_CAL));
  assert.deepEqual(m.calibration, EMULATOR_CAL);
  assert.equal(m.fields.hw, 9173);
  const sparse = parsePpk2Metadata('Calibrated: 0\nR0: 1000.5\nR1: 0\nGS2: -nan\nO3: 12.5\nEND');
  assert.equal(sparse.calibration.r[0], 1000.5);
  assert.equal(sparse.calibration.r[1], PPK2_DEFAULT_CAL.r[1]);
  assert.equal(sparse.calibration.gs[2], 1);
  assert.equal(sparse.calibration.o[3], 12.5);
  assert.throws(() => parsePpk2Metadata('R0: 1'), /END/);
});

test('hand-made words: fields decode, every range converts to the hand-computed current', () => {
  // adc | range << 14 | counter << 18 | logic << 24, at Vdd 3300 mV with EMULATOR_CAL (numbers computed by hand).
  const cases: [number, number, number][] = [
    [0, 1234, 5.372894903315008e-5],
    [1, 5000, 0.002139787268189098],
    [2, 9000, 0.03955731353268215],
    [3, 12000, 0.55298598296249],
    [4, 16000, 15.978753890385603],
  ];
  for (const [range, adc, amps] of cases) {
    const w = (adc | (range << 14) | ((range * 13 + 5) << 18) | (0xa5 << 24)) >>> 0;
    const d = decodePpk2Word(w);
    assert.deepEqual(d, { adc, range, counter: range * 13 + 5, logic: 0xa5 });
    const got = ppk2Current(EMULATOR_CAL, d.range, d.adc, 3300);
    assert.ok(Math.abs(got - amps) <= 1e-12 * Math.max(1, amps), `range ${range}: ${got} vs ${amps}`);
    // The emulator's encoder is the inverse, to within one ADC count.
    const back = ppk2Current(EMULATOR_CAL, range, ppk2Encode(EMULATOR_CAL, range, amps, 3300), 3300);
    assert.ok(Math.abs(back - amps) <= (4 * PPK2_ADC_MULT) / EMULATOR_CAL.r[range]!, `round trip range ${range}`);
  }
  // Nordic's uncalibrated defaults: range 3, adc 1000 → x = 4000·1.8/163840/0.94; I = x·(x + 1).
  assert.ok(Math.abs(ppk2Current(PPK2_DEFAULT_CAL, 3, 1000, 5000) - 0.04893592603069563) < 1e-15);
});

test('over a pty: 100 kS/s, samples equal the source in all five ranges, marker bits carried', async (t) => {
  const { emu, drv, batches } = await rig();
  t.after(async () => { await drv.stop(); await emu.stop(); });
  await drv.start();
  await until(() => drv.stats.samples > 0, 2000, 'first samples');
  assert.equal(emu.state.mode, 2, 'source mode');
  assert.equal(emu.state.vddMv, 3300, 'RegulatorSet');
  assert.ok(emu.state.dutOn, 'DeviceRunningSet 1');
  // Rate over > 1 s of host time.
  const s0 = drv.stats.samples;
  const h0 = hostNow();
  emu.setDigital(0b101);
  await new Promise((r) => setTimeout(r, 300));
  emu.setDigital(0b000);
  await new Promise((r) => setTimeout(r, 900));
  const rate = (drv.stats.samples - s0) / ((hostNow() - h0) / 1000);
  t.diagnostic(`PPK2 rate ${rate.toFixed(0)} S/s`);
  assert.ok(Math.abs(rate - 100_000) < 3000, `rate ${rate}`);
  assert.equal(drv.stats.badFrames, 0);

  const all = concatBatches(batches);
  for (let k = 1; k < all.t.length; k++) assert.ok(Math.abs(all.t[k]! - all.t[k - 1]! - PPK2_SAMPLE_MS) < 1e-3, 'samples 10 µs apart (ms-since-epoch doubles resolve ~0.25 µs)');
  // Slot k of the emulator is sample k of the driver: compare against the source at the emulator's time.
  const shift = all.t[0]! - emu.streamStartMs;
  assert.ok(Math.abs(shift) < 10, `driver time vs emulator time: ${shift} ms`);
  let checked = 0;
  for (let k = 0; k < all.t.length; k++) {
    const te = emu.streamStartMs + k * PPK2_SAMPLE_MS;
    const want = level(te);
    const range = LEVELS.indexOf(want);
    assert.ok(Math.abs(all.i[k]! - want) <= (4 * PPK2_ADC_MULT) / EMULATOR_CAL.r[range]!, `sample ${k}: ${all.i[k]} vs ${want}`);
    checked++;
  }
  assert.ok(checked > 100_000);
  assert.ok(emu.stats.rangeUse.every((n) => n > 0), `ranges used: ${emu.stats.rangeUse}`);
  // Marker: D0 and D2 high for ~300 ms.
  for (const bit of [0, 2]) {
    const w = windowsFromMarkers(all, bit);
    assert.equal(w.length, 1, `bit ${bit}`);
    assert.ok(Math.abs(w[0]![1] - w[0]![0] - 300) < 30, `bit ${bit} high for ${w[0]![1] - w[0]![0]} ms`);
  }
  assert.equal(windowsFromMarkers(all, 1).length, 0);
});

test('lost samples, a garbled word, lost bytes: counted, resynced, time stays true', async (t) => {
  const { emu, drv, batches, warnings } = await rig();
  t.after(async () => { await drv.stop(); await emu.stop(); });
  await drv.start();
  await until(() => drv.stats.samples > 5000, 2000, 'streaming');
  emu.dropSamples(7);
  await until(() => drv.stats.badFrames === 1, 1000, 'gap counted');
  assert.equal(drv.stats.lostSamples, 7);
  emu.garbleWord();
  await until(() => drv.stats.badFrames === 2, 1000, 'garbled word counted');
  emu.slipBytes(2);
  await until(() => drv.stats.badFrames >= 3, 1000, 'slip counted');
  const lostBefore = drv.stats.lostSamples;
  await new Promise((r) => setTimeout(r, 200));
  t.diagnostic(warnings.join(' | '));
  // The stream has no framing: after a 2-byte slip, the torn words of a flat signal (repeated bytes) can carry a
  // plausible counter, so the slip may cost one extra detection (garbled word, then realignment) and one
  // misplaced sample before the counter check catches it — seen once in ~10 CI runs.
  assert.ok(drv.stats.badFrames === 3 || drv.stats.badFrames === 4, warnings.join(' | '));
  assert.ok(drv.stats.lostSamples - lostBefore <= 1, 'a slipped word costs at most its own slot');
  // Every sample still lines up with the emulator's time base, across all three faults.
  const all = concatBatches(batches);
  let bad = 0;
  for (let k = 0; k < all.t.length; k++) {
    const te = all.t[k]! - (all.t[0]! - emu.streamStartMs);
    const slot = Math.round((te - emu.streamStartMs) / PPK2_SAMPLE_MS);
    const want = level(emu.streamStartMs + slot * PPK2_SAMPLE_MS);
    if (Math.abs(all.i[k]! - want) > (4 * PPK2_ADC_MULT) / EMULATOR_CAL.r[LEVELS.indexOf(want)]!) bad++;
  }
  assert.ok(bad <= drv.stats.badFrames - 3, `samples after the faults are stamped at their true time (${bad} off)`);
  assert.ok(drv.stats.samples < emu.stats.samples, 'the garbled and torn words were not passed on as samples');
});

test('unplug then replug: disconnect, reconnect with metadata re-read, streaming again', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'qslab-ppk2-'));
  const { emu, drv } = await rig(join(dir, 'ppk2'));
  t.after(async () => { await drv.stop(); await emu.stop(); rmSync(dir, { recursive: true, force: true }); });
  let metaReqs = 0;
  emu.pty.on('data', (b: Buffer) => { if (b.includes(PPK2_CMD.GetMetadata)) metaReqs++; });
  await drv.start();
  await until(() => drv.stats.samples > 1000, 2000, 'streaming');
  const disconnected = waitEvent(drv, 'disconnect', 2000);
  await emu.unplug();
  await disconnected;
  await new Promise((r) => setTimeout(r, 400));
  const before = drv.stats.samples;
  const reconnected = waitEvent(drv, 'reconnect', 4000);
  await emu.replug();
  await reconnected;
  await until(() => drv.stats.samples > before + 10_000, 2000, 'samples after reconnect');
  assert.deepEqual([drv.stats.disconnects, drv.stats.reconnects], [1, 1]);
  assert.ok(metaReqs >= 2, 'metadata read again after the replug');
  assert.ok(emu.state.streaming && emu.state.dutOn);
});
