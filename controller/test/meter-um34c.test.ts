// Proves the UM24C/UM25C/UM34C driver reads the real byte protocol: a frame recreated from a real UM34C capture
// passes the checksum and parses to its known numbers; over a real pty the driver's samples equal the emulator's
// source within the meter's quantization at ~10 Hz; bad header / bad checksum / truncated answers are dropped,
// counted once each, and the next good frame is parsed; an unplug/replug gives 'disconnect' then 'reconnect'.
import { test } from 'node:test';
import { until, waitEvent } from './harness.js';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { frameProblem, parseUmFrame, um34cChecksum, UmMeterDriver, UM34C_CHECKSUM_POSITIONS } from '../drivers/meter-um34c.js';
import type { SampleBatch } from '../drivers/meter.js';
import { UmEmulator } from '../virtual/um34c.js';
import type { UmModel } from '../drivers/meter-um34c.js';



/** Emulator + driver on a real pty; the source is a known waveform and every reading it gave is logged. */
async function rig(model: UmModel, link?: string) {
  const given: { t: number; v: number; a: number }[] = [];
  const emu = new UmEmulator({
    model, link,
    source: (t) => {
      const r = { v: 5.02 + 0.04 * Math.sin(t / 170), a: 0.25 + 0.2 * Math.sin(t / 90) };
      given.push({ t, ...r });
      return r;
    },
  });
  const path = await emu.start();
  const drv = new UmMeterDriver({ path });
  const samples: { t: number; v: number; i: number }[] = [];
  drv.on('samples', (b: SampleBatch) => samples.push({ t: b.t[0]!, v: b.v[0]!, i: b.i[0]! }));
  const warnings: string[] = [];
  drv.on('warning', (w: string) => warnings.push(w));
  return { emu, drv, given, samples, warnings };
}

test('a UM34C frame recreated from a real capture: checksum and fields', () => {
  // Field values of a published capture (5.01 V, 142 mA, 711 mW, 27 °C, group 1 holding 7 mAh / 39 mWh, ...),
  // written here byte by byte; the capture's last byte was 0x68.
  const f = Buffer.alloc(130);
  f.writeUInt16BE(0x0d4c, 0);
  f.writeUInt16BE(501, 2);
  f.writeUInt16BE(142, 4);
  f.writeUInt32BE(711, 6);
  f.writeUInt16BE(27, 10);
  f.writeUInt16BE(81, 12);
  f.writeUInt16BE(1, 14);
  f.writeUInt32BE(7, 24);
  f.writeUInt32BE(39, 28);
  f.writeUInt16BE(2, 96);
  f.writeUInt16BE(1, 98);
  f.writeUInt16BE(7, 100);
  f.writeUInt32BE(7, 102);
  f.writeUInt32BE(37, 106);
  f.writeUInt16BE(19, 110);
  f.writeUInt32BE(70, 112);
  f.writeUInt16BE(1, 118);
  f.writeUInt16BE(4, 120);
  f.writeUInt32BE(352, 122);
  f[128] = 0x80;
  f[129] = 0x68;
  assert.equal(UM34C_CHECKSUM_POSITIONS.length, 32);
  assert.equal(um34cChecksum(f), 0x68, 'checksum positions reproduce the captured checksum');
  assert.equal(frameProblem(f), undefined);
  const p = parseUmFrame(f);
  assert.equal(p.model, 'um34c');
  assert.ok(Math.abs(p.volts - 5.01) < 1e-9 && Math.abs(p.amps - 0.142) < 1e-9 && Math.abs(p.watts - 0.711) < 1e-9);
  assert.equal(p.tempC, 27);
  assert.equal(p.tempF, 81);
  assert.equal(p.group, 1);
  assert.deepEqual(p.groups[1], { mAh: 7, mWh: 39 });
  assert.equal(p.record.thresholdA, 0.19);
  assert.equal(p.record.seconds, 70);
  assert.equal(p.resistanceOhm, 35.2);
  assert.equal(p.backlight, 4);

  const bad = Buffer.from(f);
  bad[3] ^= 1; // voltage low byte, one of the checksummed positions
  assert.match(frameProblem(bad) ?? '', /checksum/);
});

test('UM25C and UM24C frames: 1 mV / 0.1 mA vs 10 mV / 1 mA, end marker 0xFFF1', () => {
  const f = Buffer.alloc(130);
  f.writeUInt16BE(0x09c9, 0);
  f.writeUInt16BE(5123, 2);
  f.writeUInt16BE(1234, 4);
  f.writeUInt16BE(0xfff1, 128);
  const p = parseUmFrame(f);
  assert.equal(p.model, 'um25c');
  assert.ok(Math.abs(p.volts - 5.123) < 1e-9 && Math.abs(p.amps - 0.1234) < 1e-9);
  f.writeUInt16BE(0x0963, 0);
  const q = parseUmFrame(f);
  assert.equal(q.model, 'um24c');
  assert.ok(Math.abs(q.volts - 51.23) < 1e-9 && Math.abs(q.amps - 1.234) < 1e-9);
  f.writeUInt16BE(0xfff0, 128);
  assert.match(frameProblem(f) ?? '', /end marker/);
  f.writeUInt16BE(0x1234, 0);
  assert.match(frameProblem(f) ?? '', /unknown model/);
});

for (const model of ['um34c', 'um25c'] as const) {
  test(`${model} over a pty: samples equal the source within the meter's quantization, ~10 Hz`, async (t) => {
    const { emu, drv, given, samples } = await rig(model);
    t.after(async () => { await drv.stop(); await emu.stop(); });
    await drv.start();
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, 1500));
    const rate = samples.length / ((Date.now() - t0) / 1000);
    assert.ok(rate > 8 && rate < 12, `rate ${rate.toFixed(1)} Hz`);
    assert.equal(drv.model, model);
    const q = model === 'um25c' ? { v: 0.001, i: 0.0001 } : { v: 0.01, i: 0.001 };
    assert.equal(drv.info.currentResolutionA, q.i);
    // One answer per poll, in order: the k-th sample is the k-th reading the emulator gave.
    const n = Math.min(samples.length, given.length);
    assert.ok(n >= 10);
    for (let k = 0; k < n; k++) {
      const s = samples[k]!;
      const g = given[k]!;
      assert.ok(Math.abs(s.v - g.v) <= q.v / 2 + 1e-9, `V ${s.v} vs ${g.v}`);
      assert.ok(Math.abs(s.i - g.a) <= q.i / 2 + 1e-9, `I ${s.i} vs ${g.a}`);
      assert.ok(Math.abs(s.t - g.t) < 5, `stamp ${s.t} vs reading at ${g.t} (latency correction)`);
    }
    assert.ok(drv.info.latencyMs >= 0 && drv.info.latencyMs < 5, `latency ${drv.info.latencyMs}`);
    assert.equal(drv.stats.badFrames, 0);
  });
}

test('bad header, bad checksum and truncated answers: dropped, counted once each, next frame parsed', async (t) => {
  const { emu, drv, samples, warnings } = await rig('um34c');
  t.after(async () => { await drv.stop(); await emu.stop(); });
  await drv.start();
  for (const kind of ['header', 'trailer', 'truncate'] as const) {
    const bad = drv.stats.badFrames;
    const polls = emu.stats.polls;
    emu.corruptNext(kind);
    await until(() => emu.stats.polls > polls, 1000, `the ${kind} poll`);
    const seen = samples.length;
    await until(() => samples.length > seen, 1500, `a good frame after the ${kind} one`);
    assert.equal(drv.stats.badFrames, bad + 1, `${kind}: ${warnings.join(' | ')}`);
  }
  assert.equal(emu.stats.corrupted, 3);
  assert.equal(drv.stats.badFrames, 3);
  assert.equal(warnings.length, 3);
  // The meter's other commands are understood and harmless.
  drv.command(0xa3);
  drv.command(0xd2);
  await until(() => emu.state.group === 3 && emu.state.backlight === 2, 1000, 'group/backlight commands');
  const seen = samples.length;
  await until(() => samples.length > seen + 2, 1000, 'samples after commands');
});

test('unplug then replug: disconnect, reopen at the same path, reconnect, samples flow again', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'qslab-um-'));
  const { emu, drv, samples } = await rig('um34c', join(dir, 'rfcomm0'));
  t.after(async () => { await drv.stop(); await emu.stop(); rmSync(dir, { recursive: true, force: true }); });
  await drv.start();
  const disconnected = waitEvent(drv, 'disconnect', 2000);
  await emu.unplug();
  await disconnected;
  await new Promise((r) => setTimeout(r, 500)); // a few failed reopen attempts
  const before = samples.length;
  const reconnected = waitEvent(drv, 'reconnect', 3000);
  await emu.replug();
  await reconnected;
  await until(() => samples.length > before + 3, 2000, 'samples after reconnect');
  assert.deepEqual([drv.stats.disconnects, drv.stats.reconnects], [1, 1]);
  assert.ok(samples.every((s, k) => k === 0 || s.t > samples[k - 1]!.t), 'time never goes backwards');
});
