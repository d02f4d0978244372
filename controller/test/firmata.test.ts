// The Firmata board path end to end: johnny-five + firmata-io on our serialport 13 stack, over a real pty, against
// the virtual StandardFirmata Uno. Pin levels are the ones the virtual board's pins present electrically.
import { until } from './harness.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FirmataBoard, FirmataError, SysexFramer, five, type FirmataFrameError } from '../drivers/firmata.js';
import { RelayDriver } from '../drivers/relay.js';
import { Ina2xxMeter, INA, planCalibration, type Ina2xxOptions } from '../drivers/meter-ina2xx.js';
import { hostNow, type SampleBatch } from '../drivers/meter.js';
import { VirtualFirmataBoard, VirtualIna, MODE, type PinLevel, type PowerSource, type VirtualFirmataOptions } from '../virtual/firmata-board.js';
import { PtyEndpoint } from '../virtual/pty.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Seen { pin: number; level: PinLevel; t: number }
interface Rig { vb: VirtualFirmataBoard; fb: FirmataBoard; seen: Seen[]; levels(pin: number, from?: number): PinLevel[] }

/** A virtual Uno on a pty, every pin level it presents recorded from power-up, and johnny-five ready on it. */
async function rig(t: { after(fn: () => Promise<void>): void }, o: VirtualFirmataOptions = {}, setup?: (vb: VirtualFirmataBoard) => void): Promise<Rig> {
  const vb = new VirtualFirmataBoard(o);
  const seen: Seen[] = [];
  vb.onPinWrite = (pin, level, tt) => void seen.push({ pin, level, t: tt });
  setup?.(vb);
  let fb: FirmataBoard | undefined;
  t.after(async () => { await fb?.close(); await vb.stop(); });
  const path = await vb.start();
  fb = await FirmataBoard.open({ path, name: 'uno' });
  return { vb, fb, seen, levels: (pin, from = 0) => seen.slice(from).filter((s) => s.pin === pin).map((s) => s.level) };
}

test('johnny-five reaches ready on the virtual Uno over a real pty in < 1 s', async (t) => {
  const vb = new VirtualFirmataBoard({ name: 'uno' });
  t.after(() => vb.stop());
  const path = await vb.start();
  const t0 = performance.now();
  const fb = await FirmataBoard.open({ path });
  const ms = performance.now() - t0;
  t.after(() => fb.close());
  t.diagnostic(`johnny-five 'ready' ${ms.toFixed(1)} ms after open (${fb.firmware}, ${path})`);
  assert.ok(ms < 1000, `ready took ${ms.toFixed(0)} ms`);
  assert.ok(fb.board.isReady);
  assert.equal(fb.io.firmware.name, 'StandardFirmata.ino');
  assert.deepEqual(fb.io.analogPins, [14, 15, 16, 17, 18, 19]);
  assert.deepEqual(fb.io.pins[0]!.supportedModes, []); // RX/TX belong to the serial port
  assert.ok(fb.io.pins[3]!.supportedModes.includes(MODE.PWM) && !fb.io.pins[4]!.supportedModes.includes(MODE.PWM));
  assert.ok(fb.io.pins[18]!.supportedModes.includes(MODE.I2C) && fb.io.pins[18]!.supportedModes.includes(MODE.ANALOG));
  assert.ok(vb.stats.bytesIn > 0 && vb.stats.unknown === 0);
});

test('a board that never answers fails with the port and the fix; a missing port fails at open', async (t) => {
  const silent = new PtyEndpoint({ name: 'silent' });
  const got: number[] = [];
  silent.on('data', (b: Buffer) => got.push(...b));
  const path = await silent.start();
  t.after(() => silent.stop());
  await assert.rejects(FirmataBoard.open({ path, readyTimeoutMs: 400 }), (e: unknown) =>
    e instanceof FirmataError && e.code === 'E_TIMEOUT' && e.message.includes(path) && /flash StandardFirmata/.test(e.message));
  assert.ok(got.includes(0xf9), 'the driver asked for the version'); // REPORT_VERSION
  await assert.rejects(FirmataBoard.open({ path: '/dev/qslab-no-such-port' }), (e: unknown) => e instanceof FirmataError && e.code === 'E_OPEN');
});

test('active-low relay on a stock board: init never drives LOW, on/off/powerCycle levels as seen by the board', async (t) => {
  const { vb, fb, seen, levels } = await rig(t);
  assert.deepEqual(levels(7), [0], 'stock StandardFirmata boots with the pin OUTPUT LOW (the firmware hazard)');
  const relay = new RelayDriver(fb, { name: 'node1', pin: 7, isInverted: true });
  const mark = seen.length;
  await relay.init();
  assert.deepEqual(levels(7, mark), [1], 'init went straight to the rest level');
  assert.equal(relay.state, 'off');
  relay.on();
  await until(() => vb.level(7) === 0, 1000, 'relay on', 2);
  relay.off();
  await until(() => vb.level(7) === 1, 1000, 'relay off', 2);
  await relay.powerCycle(100);
  await until(() => vb.level(7) === 0, 1000, 'relay back on', 2);
  assert.deepEqual(levels(7, mark), [1, 0, 1, 0]); // on, off (the powerCycle's off found it off already), on
  const last = seen.filter((s) => s.pin === 7).slice(-2);
  const offMs = last[1]!.t - last[0]!.t;
  t.diagnostic(`powerCycle(100): the board saw the pin off for ${offMs.toFixed(1)} ms`);
  assert.ok(offMs >= 95 && offMs < 200, `off for ${offMs} ms`);
  assert.deepEqual(relay.transitions.map((x) => `${x.cause}:${x.state}:${x.level}`),
    ['init:off:1', 'on:on:0', 'off:off:1', 'powerCycle:off:1', 'powerCycle:on:0']);
  assert.ok(relay.transitions.every((x, i, a) => i === 0 || x.t >= a[i - 1]!.t));
});

test('active-low relay from high-Z inputs: init never shows LOW, while johnny-five\'s usual pinMode+open does', async (t) => {
  const { vb, fb, seen, levels } = await rig(t, { bootPinMode: 'input' });
  assert.deepEqual([vb.level(7), vb.level(8)], [null, null]);
  const relay = new RelayDriver(fb, { name: 'node1', pin: 7, isInverted: true });
  await relay.init();
  assert.deepEqual(levels(7), [1], 'pull-up first (weak HIGH), then the output driver keeps HIGH');
  assert.equal(vb.mode(7), MODE.OUTPUT);
  // The sequence from johnny-five's examples: make the pin an OUTPUT, then open the relay.
  const mark = seen.length;
  fb.io.pinMode(8, fb.io.MODES.OUTPUT);
  new five.Relay({ pin: 8, type: 'NC', board: fb.board }).open();
  await until(() => vb.level(8) === 1, 1000, 'naive relay settled', 2);
  assert.deepEqual(levels(8, mark), [0, 1], 'the recorder sees the glitch init() avoids');
});

test('relay wiring: NO/NC × active-high/low give the documented levels and rest states', async (t) => {
  const { vb, fb } = await rig(t);
  const cases = [
    { pin: 2, type: 'NO' as const, isInverted: false, on: 1, init: 'off' },
    { pin: 3, type: 'NO' as const, isInverted: true, on: 0, init: 'off' },
    { pin: 4, type: 'NC' as const, isInverted: false, on: 0, init: 'on' },
    { pin: 5, type: 'NC' as const, isInverted: true, on: 1, init: 'on' },
  ];
  for (const c of cases) {
    const r = new RelayDriver(fb, { name: `n${c.pin}`, pin: c.pin, type: c.type, isInverted: c.isInverted });
    await r.init();
    assert.equal(r.state, c.init, `pin ${c.pin} rest state`);
    r.on();
    await until(() => vb.level(c.pin) === c.on, 1000, `pin ${c.pin} on`, 2);
    r.off();
    await until(() => vb.level(c.pin) === 1 - c.on, 1000, `pin ${c.pin} off`, 2);
  }
});

test('switching one relay leaves the other relays of its port alone after a controller restart', async (t) => {
  const { vb, fb, seen, levels } = await rig(t);
  for (const pin of [6, 7]) await new RelayDriver(fb, { name: `n${pin}`, pin, isInverted: true }).init();
  await fb.close();
  const fb2 = await FirmataBoard.open({ path: vb.path, name: 'uno again' });
  t.after(() => fb2.close());
  const mark = seen.length;
  const r7 = new RelayDriver(fb2, { name: 'n7', pin: 7, isInverted: true });
  await r7.init();
  r7.on();
  await until(() => vb.level(7) === 0, 1000, 'relay 7 on', 2);
  r7.off();
  await until(() => vb.level(7) === 1, 1000, 'relay 7 off', 2);
  assert.deepEqual(levels(6, mark), [], 'pin 6 never moved (a port-wide write from a fresh cache would drive it LOW)');
  assert.equal(vb.level(6), 1);
});

test('marker input: setInput on the board reaches johnny-five\'s digitalRead within 100 ms', async (t) => {
  const { vb, fb } = await rig(t);
  const got: { v: 0 | 1; t: number; at: number }[] = [];
  const unwatch = fb.watchDigital(2, (v, tt) => void got.push({ v, t: tt, at: hostNow() }));
  await until(() => got.length === 1, 1000, 'initial report', 2);
  assert.equal(vb.mode(2), MODE.INPUT);
  const lat: number[] = [];
  for (const v of [1, 0, 1, 0] as const) {
    const t0 = hostNow();
    vb.setInput(2, v);
    await until(() => got[got.length - 1]!.v === v, 1000, `edge to ${v}`, 2);
    lat.push(got[got.length - 1]!.at - t0);
  }
  t.diagnostic(`marker edge → johnny-five: ${lat.map((x) => x.toFixed(2)).join(', ')} ms`);
  assert.ok(Math.max(...lat) < 100); // ~2 ms on an idle host; the bound leaves room for a loaded CI machine
  assert.deepEqual(got.map((g) => g.v), [0, 1, 0, 1, 0]);
  assert.ok(got.every((g) => g.t < g.at));
  unwatch();
});

// ---- INA219 / INA226 through the board -------------------------------------------------------------------------

/** Cycles through levels, one every `everyMs` from creation. */
function stepped(levels: { v: number; a: number }[], everyMs: number): { src: PowerSource; t0: number; everyMs: number } {
  const t0 = hostNow();
  const src: PowerSource = (tt) => levels[((Math.floor((tt - t0) / everyMs) % levels.length) + levels.length) % levels.length]!;
  return { src, t0, everyMs };
}

function collect(m: Ina2xxMeter): SampleBatch[] {
  const out: SampleBatch[] = [];
  m.on('samples', (b: SampleBatch) => void out.push(b));
  return out;
}

/**
 * Compares samples with the source at their timestamps, skipping samples within `guardMs` of a level change
 * (a timestamp that is off by more than the guard shows up as a mismatch).
 */
function compare(batches: SampleBatch[], s: ReturnType<typeof stepped>, tolA: number, tolV: number, guardMs: number, from = -Infinity, to = Infinity) {
  let checked = 0, bad = 0, lastT = -Infinity;
  const examples: string[] = [];
  const worst = { a: 0, v: 0 };
  for (const b of batches) {
    for (let k = 0; k < b.t.length; k++) {
      const tt = b.t[k]!;
      assert.ok(tt > lastT, 'timestamps increase across batches');
      lastT = tt;
      const phase = (tt - s.t0) % s.everyMs;
      if (tt < from || tt > to || phase < guardMs || phase > s.everyMs - guardMs) continue;
      const want = s.src(tt);
      const da = Math.abs(b.i[k]! - want.a), dv = Math.abs(b.v[k]! - want.v);
      worst.a = Math.max(worst.a, da);
      worst.v = Math.max(worst.v, dv);
      checked++;
      if (da > tolA || dv > tolV) {
        bad++;
        if (examples.length < 3) examples.push(`t+${phase.toFixed(1)} ms into a level: ${b.v[k]} V ${b.i[k]} A, source ${want.v} V ${want.a} A`);
      }
    }
  }
  return { checked, bad, worst, examples };
}

async function meterRig(t: { after(fn: () => Promise<void>): void }, kind: 'ina219' | 'ina226', shuntOhms: number, source: PowerSource, o: Partial<Ina2xxOptions> = {}) {
  const chip = new VirtualIna(kind, { shuntOhms, source });
  const r = await rig(t, {}, (vb) => vb.attachI2c(kind === 'ina219' ? 0x40 : 0x41, chip));
  const m = new Ina2xxMeter({ name: kind, kind, board: r.fb, address: kind === 'ina219' ? 0x40 : 0x41, shuntOhms, maxCurrentA: 1, ...o });
  const warnings: string[] = [];
  m.on('warning', (w: string) => void warnings.push(w));
  t.after(() => m.stop());
  return { ...r, chip, m, warnings, batches: collect(m) };
}

/** Quantization bound: shunt ADC rounding (half an LSB, through the shunt) + one current-register LSB (truncation). */
const tolA = (kind: 'ina219' | 'ina226', shuntOhms: number, lsb: number): number => INA[kind].shuntLsbV / 2 / shuntOhms + lsb + 1e-12;

/** Mean of (when the sample really was − its timestamp), from a current ramp: (i − ramp(t)) / slope. */
function timingError(batches: SampleBatch[], at: (tt: number) => number | undefined, slopeAPerMs: number, from: number) {
  const errs: number[] = [];
  for (const b of batches) for (let k = 0; k < b.t.length; k++) {
    const want = b.t[k]! >= from ? at(b.t[k]!) : undefined;
    if (want !== undefined) errs.push((b.i[k]! - want) / slopeAPerMs);
  }
  const mean = errs.reduce((x, y) => x + y, 0) / errs.length;
  return { n: errs.length, mean, sd: Math.sqrt(errs.reduce((x, y) => x + (y - mean) ** 2, 0) / errs.length) };
}

for (const [kind, shuntOhms] of [['ina219', 0.1], ['ina226', 0.05]] as const) {
  test(`${kind} via the virtual board: readings equal the source within the chip's quantization, timestamps centred`, async (t) => {
    const s = stepped([{ v: 3.3, a: 0.0123 }, { v: 5.02, a: 0.4567 }, { v: 4.2, a: -0.2345 }, { v: 3.0, a: 0.8888 }], 250);
    // Then a sawtooth current (0.1 → 0.7 A in 400 ms): a timestamp off by d ms reads as a current off by d × slope.
    const RAMP_MS = 400, slope = 0.6 / RAMP_MS;
    let rampT0 = Infinity;
    const ramp = (tt: number): number => 0.1 + slope * ((((tt - rampT0) % RAMP_MS) + RAMP_MS) % RAMP_MS);
    const { m, batches, warnings } = await meterRig(t, kind, shuntOhms, (tt) => (tt >= rampT0 ? { v: 4, a: ramp(tt) } : s.src(tt)));
    await m.start();
    await sleep(1000);
    rampT0 = hostNow();
    await sleep(1000);
    await m.stop();
    const lsb = m.plan!.currentLsbA;
    const guard = m.setup!.periodMs + 20; // timestamp error: ±period/2 by design, plus host scheduling jitter
    const r = compare(batches, s, tolA(kind, shuntOhms, lsb), INA[kind].busLsbV / 2 + 1e-12, guard, -Infinity, rampT0 - guard);
    const inRamp = (tt: number): number | undefined => {
      const ph = (tt - rampT0) % RAMP_MS;
      return ph > guard && ph < RAMP_MS - guard ? ramp(tt) : undefined;
    };
    const te = timingError(batches, inRamp, slope, rampT0);
    t.diagnostic(`${kind}: ${m.stats.samples} samples at ${m.info.rateHz.toFixed(1)} Hz (${m.setup!.samples}× averaging, period ${m.setup!.periodMs} ms), ` +
      `latency ${m.info.latencyMs.toFixed(2)} ms (RTT ${m.rttMs.toFixed(2)} ms), Cal ${m.plan!.calibration}, LSB ${(lsb * 1e6).toFixed(2)} µA; ` +
      `${r.checked} compared, worst |Δi| ${(r.worst.a * 1e6).toFixed(1)} µA (bound ${(tolA(kind, shuntOhms, lsb) * 1e6).toFixed(1)}), |Δv| ${(r.worst.v * 1e3).toFixed(2)} mV; ` +
      `stale ${m.stats.stale}; timestamp error on the ramp ${te.mean.toFixed(2)} ± ${te.sd.toFixed(2)} ms (n ${te.n})`);
    assert.ok(r.checked >= 25, `only ${r.checked} samples compared`);
    assert.equal(r.bad, 0, r.examples.join('; '));
    assert.ok(te.n >= 20 && Math.abs(te.mean) < 4, `timestamps are off by ${te.mean.toFixed(2)} ms on average`);
    assert.deepEqual(warnings, []);
    assert.equal(m.stats.badFrames, 0);
  });
}

test('a wrong calibration gives wrong currents and the comparison catches them', async (t) => {
  const s = stepped([{ v: 5, a: 0.5 }], 1e9);
  const cal = planCalibration('ina219', 0.1, 1).calibration;
  const { m, batches } = await meterRig(t, 'ina219', 0.1, s.src, { calibration: Math.round(cal * 1.02) });
  await m.start();
  await sleep(300);
  await m.stop();
  const r = compare(batches, s, tolA('ina219', 0.1, m.plan!.currentLsbA), 0.002, 0);
  t.diagnostic(`calibration ${m.plan!.calibration} instead of ${cal}: ${r.bad}/${r.checked} samples off, worst ${(r.worst.a * 1e3).toFixed(2)} mA`);
  assert.ok(r.checked > 5 && r.bad === r.checked);
});

test('an INA226 that loses its calibration (brown-out reset) is noticed and reprogrammed', async (t) => {
  const s = stepped([{ v: 3.3, a: 0.25 }], 1e9);
  const { m, chip, batches, warnings } = await meterRig(t, 'ina226', 0.05, s.src, { checkEveryMs: 150 });
  await m.start();
  await sleep(200);
  chip.write([0, 0x80, 0x00]); // RST: every register back to its power-on value, calibration 0
  const lost = hostNow();
  await until(() => warnings.length > 0, 1000, 'repair warning', 2);
  const repaired = hostNow();
  assert.match(warnings[0]!, /calibration 0 read back.*reprogrammed/);
  assert.ok(m.stats.repairs >= 1);
  await sleep(300);
  await m.stop();
  const before = compare(batches, s, tolA('ina226', 0.05, m.plan!.currentLsbA), 0.001, 0);
  const after = compare(batches, s, tolA('ina226', 0.05, m.plan!.currentLsbA), 0.001, 0, repaired + 3 * m.setup!.periodMs);
  t.diagnostic(`calibration lost → warning after ${(repaired - lost).toFixed(0)} ms; ${before.bad} wrong samples in between, ${after.bad}/${after.checked} after`);
  assert.ok(before.bad > 0, 'the zero-current samples while the chip was unprogrammed are visible');
  assert.ok(after.checked > 5 && after.bad === 0);
});

test('INA219 math overflow (OVF) drops samples with a warning; a missing chip or an unplugged board is reported', async (t) => {
  const s = stepped([{ v: 5, a: 0.35 }], 1e9);
  const { vb, m, warnings, batches, fb } = await meterRig(t, 'ina219', 0.1, s.src, { maxCurrentA: 0.3 });
  await m.start();
  await until(() => warnings.length > 0, 1000, 'overflow warning', 2);
  assert.match(warnings[0]!, /math overflow \(OVF\)/);
  assert.ok(m.stats.overflows > 0);
  assert.equal(batches.length, 0);
  const ghost = new Ina2xxMeter({ name: 'ghost', kind: 'ina219', board: fb, address: 0x44, shuntOhms: 0.1, maxCurrentA: 1 });
  await assert.rejects(ghost.start(), /no device answers/);
  const gone = new Promise<string>((res) => m.once('disconnect', res));
  await vb.pty.unplug();
  assert.match(await gone, /tty|pts|disconnect|hung up|EOF|I\/O/i);
  assert.equal(m.stats.disconnects, 1);
});

// ---- unplug → reconnect, broken frames on the Firmata wire ----------------------------------------------------

test('SysexFramer: a sysex cut by a stray status byte or a new sysex is reported and never reaches firmata-io', () => {
  const out: number[] = [];
  const errs: FirmataFrameError[] = [];
  let resets = 0;
  const f = new SysexFramer((b) => void out.push(...b), (e) => void errs.push(e), () => void resets++);
  const reply = [0xf0, 0x77, 0x40, 0x00, 0x04, 0x00, 0x12, 0x01, 0x34, 0x00, 0xf7];
  f.push(Buffer.from([0x91, 0x01, 0x00, ...reply]));
  assert.deepEqual(out, [0x91, 0x01, 0x00, ...reply], 'good messages pass untouched');
  out.length = 0;
  // stray DIGITAL_MESSAGE status inside an I2C reply, split across chunks: the fragment and the "message" are dropped
  f.push(Buffer.from([0xf0, 0x77, 0x40, 0x00, 0x04]));
  f.push(Buffer.from([0x00, 0x90, 0x12, 0x01, 0x34, 0x00, 0xf7, 0xe0, 0x05, 0x00]));
  assert.deepEqual(errs.map((e) => [e.reason, e.command, e.address, e.register, e.status]), [['stray', 0x77, 0x40, 4, 0x90]]);
  assert.deepEqual(out, [0xf0, 0x77, 0x40, 0x00, 0x04, 0x00, 0xe0, 0x05, 0x00], 'only the (reset) fragment head and the next real message');
  out.length = 0;
  // END_SYSEX lost: the next sysex ends the fragment and passes
  f.push(Buffer.from([0xf0, 0x77, 0x40, 0x00, 0x02, 0x00, 0x12, ...reply]));
  assert.deepEqual(errs.map((e) => e.reason), ['stray', 'unterminated']);
  assert.equal(errs[1]!.register, 2);
  assert.deepEqual(out.slice(-reply.length), reply);
  assert.equal(resets, 2);
});

test('unplug for 500 ms then replug: board, INA226 meter, relay and marker come back; readings still equal the source', async (t) => {
  const s = stepped([{ v: 3.3, a: 0.25 }, { v: 4.8, a: 0.61 }], 200);
  const { vb, fb, m, chip, batches, warnings } = await meterRig(t, 'ina226', 0.05, s.src);
  const events: string[] = [];
  for (const ev of ['disconnect', 'reconnect'] as const) {
    fb.on(ev, () => void events.push(`board ${ev}`));
    m.on(ev, () => void events.push(`meter ${ev}`));
  }
  await m.start();
  const relay = new RelayDriver(fb, { name: 'node1', pin: 7, isInverted: true });
  await relay.init();
  relay.on();
  await until(() => vb.level(7) === 0, 1000, 'relay on', 2);
  const marks: (0 | 1)[] = [];
  fb.watchDigital(2, (v) => void marks.push(v));
  await until(() => marks.length === 1, 1000, 'marker report', 2);
  await sleep(300);
  const before = batches.reduce((n, b) => n + b.t.length, 0);
  await vb.unplug();
  const unplugged = hostNow();
  chip.write([0, 0x80, 0x00]); // the chip lost power with the board: configuration and calibration are gone
  await until(() => events.includes('meter disconnect'), 1000, 'board disconnect', 2);
  await sleep(500);
  const replugged = hostNow();
  await vb.replug();
  await until(() => events.includes('meter reconnect'), 5000, 'meter reconnect', 2);
  const back = hostNow();
  await until(() => vb.level(7) === 0 && relay.transitions.length >= 4, 2000, 'relay back on', 2);
  vb.setInput(2, 1);
  await until(() => marks[marks.length - 1] === 1, 1000, 'marker edge after the reconnect', 2);
  await sleep(500);
  await m.stop();
  const after = compare(batches, s, tolA('ina226', 0.05, m.plan!.currentLsbA), INA.ina226.busLsbV / 2 + 1e-12, m.setup!.periodMs + 20, back);
  t.diagnostic(`outage: board reconnect ${fb.stats.lastOutageMs.toFixed(0)} ms after the unplug (${(back - replugged).toFixed(0)} ms from replug to the first sample, ` +
    `handshake ${fb.readyMs.toFixed(0)} ms, ${fb.stats.reconnectAttempts} attempts); ${before} samples before, ${after.checked} compared after (${after.bad} off)`);
  assert.deepEqual(events, ['board disconnect', 'meter disconnect', 'board reconnect', 'meter reconnect']);
  assert.deepEqual([m.stats.disconnects, m.stats.reconnects, fb.stats.disconnects, fb.stats.reconnects], [1, 1, 1, 1]);
  assert.ok(before > 5, 'samples flowed before the unplug');
  assert.ok(after.checked >= 10 && after.bad === 0, `after the reconnect: ${after.bad}/${after.checked} off: ${after.examples.join('; ')}`);
  assert.ok(batches.every((b) => b.t.every((tt) => tt < unplugged || tt > replugged)), 'no samples in the outage');
  assert.equal(m.stats.repairs, 0, 'the chip was reprogrammed at the reconnect, not by the periodic check');
  assert.deepEqual(warnings, []);
  assert.equal(m.stats.badFrames, 0);
  assert.ok(back - replugged < 2000, `reconnect took ${(back - replugged).toFixed(0)} ms`);
  assert.deepEqual(relay.transitions.slice(-2).map((x) => `${x.cause}:${x.state}:${x.level}`), ['reconnect:off:1', 'reconnect:on:0']);
  assert.equal(vb.stats.boots, 2);
});

test('truncated, framing-broken and unterminated I2C replies: each counted once with a warning, the next sample is good, no spurious digital edge', async (t) => {
  const s = stepped([{ v: 5.02, a: 0.4567 }, { v: 3.3, a: 0.0123 }], 250);
  const { vb, fb, m, batches, warnings } = await meterRig(t, 'ina219', 0.1, s.src);
  await m.start();
  const marks: number[] = [];
  fb.watchDigital(2, (v) => void marks.push(v));
  await until(() => marks.length === 1, 1000, 'marker report', 2);
  let digital = 0;
  fb.io.on('digital-read', () => void digital++);
  await sleep(200);
  assert.equal(m.stats.badFrames, 0);
  const faults = [['truncate', /truncated I2C reply \(1 of 2/], ['framing', /stray status byte 0x90/], ['unterminated', /END_SYSEX lost/]] as const;
  for (const [fault, re] of faults) {
    const bad0: number = m.stats.badFrames, w0: number = warnings.length;
    vb.corruptNextI2cReply(fault, { address: 0x40, register: 4 }); // the current register
    await until(() => m.stats.badFrames > bad0, 1000, `${fault} counted`, 2);
    const t0 = hostNow();
    const n0 = batches.reduce((n, b) => n + b.t.length, 0);
    await until(() => batches.reduce((n, b) => n + b.t.length, 0) >= n0 + 3, 1000, `samples after the ${fault} reply`, 2);
    assert.equal(m.stats.badFrames, bad0 + 1, `${fault}: one count`);
    assert.equal(warnings.length, w0 + 1, `${fault}: one warning`);
    assert.match(warnings[w0]!, re);
    assert.ok(batches.some((b) => b.t.some((tt) => tt > t0 - 50)), 'samples continue');
  }
  await sleep(100);
  await m.stop();
  const r = compare(batches, s, tolA('ina219', 0.1, m.plan!.currentLsbA), INA.ina219.busLsbV / 2 + 1e-12, m.setup!.periodMs + 20);
  t.diagnostic(`${m.stats.samples} samples, ${r.checked} compared (${r.bad} off); badFrames ${m.stats.badFrames}, board framing errors ${fb.stats.framingErrors}; ${warnings.join(' | ')}`);
  assert.equal(vb.stats.corrupted, 3);
  assert.equal(fb.stats.framingErrors, 2);
  assert.equal(m.stats.badFrames, 3);
  assert.equal(digital, 0, 'firmata-io never saw the stray 0x90 as a DIGITAL_MESSAGE');
  assert.ok(r.checked >= 10 && r.bad === 0, r.examples.join('; '));
});
