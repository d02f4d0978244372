// INA219/INA226 calibration maths and register decoding against the datasheets' worked examples
// (INA219 SBOS448 "Configure/Measure/Calculate Example": 10 A, 2 mΩ, 1 mA/bit; INA226 SBOS547, same load), and the
// virtual chips' register files against the same tables.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  calibrationValue, correctedCalibration, decodeBus, decodeCurrent, decodeMask, decodePower, decodeShunt,
  ina219Config, ina226Config, INA, minimumCurrentLsb, planCalibration,
} from '../drivers/meter-ina2xx.js';
import { VirtualIna } from '../virtual/firmata-board.js';

const close = (a: number, b: number, eps = 1e-9): void => assert.ok(Math.abs(a - b) <= eps, `${a} ≠ ${b} (±${eps})`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function reg(chip: VirtualIna, r: number): number {
  chip.write([r]);
  const [hi, lo] = chip.read(2);
  return (hi! << 8) | lo!;
}
function setReg(chip: VirtualIna, r: number, v: number): void {
  chip.write([r, v >> 8, v & 0xff]);
}

test('INA219 datasheet example: Cal 20480 (5000h), registers 07D0h/5D98h/2710h/1766h → 20 mV, 11.98 V, 10 A, 119.8 W', () => {
  assert.equal(calibrationValue('ina219', 0.002, 0.001), 20480);
  close(decodeShunt('ina219', 0x07d0), 0.020);
  const bus = decodeBus('ina219', 0x5d98);
  close(bus.volts, 11.98);
  assert.deepEqual([bus.cnvr, bus.ovf], [false, false]);
  close(decodeCurrent(0x2710, 0.001), 10);
  close(decodePower(0x1766, INA.ina219.powerRatio * 0.001), 119.8, 1e-9);
  // The chip's own arithmetic: Current = Shunt × Cal / 4096, Power = Current × Bus / 5000.
  assert.equal((2000 * 20480) / 4096, 0x2710);
  assert.equal(Math.trunc((10000 * 2995) / 5000), 0x1766);
});

test('INA226 datasheet example: LSB 457.7 µA for 15 A, Cal 2560 (A00h) at 1 mA, registers 1F40h/2570h/2710h/12B8h', () => {
  close(minimumCurrentLsb('ina226', 15), 457.7e-6, 0.1e-6); // 457.76 µA, printed truncated
  assert.equal(calibrationValue('ina226', 0.002, 0.001), 0x0a00);
  close(decodeShunt('ina226', 0x1f40), 0.020);
  close(decodeBus('ina226', 0x2570).volts, 11.98);
  close(decodeCurrent(0x2710, 0.001), 10);
  close(decodePower(0x12b8, INA.ina226.powerRatio * 0.001), 119.8);
  assert.equal(Math.trunc((8000 * 2560) / 2048), 10000);
  assert.equal(Math.trunc((10000 * 9584) / 20000), 0x12b8);
  assert.equal(ina226Config({ samples: 1, conversionUs: 1100 }).config, 0x4127); // the power-on default
});

test('calibration plan: the INA219 minimum LSB, an even Cal, the exact LSB it implies; out-of-range is refused with a fix', () => {
  const p = planCalibration('ina219', 0.1, 3.2);
  close(minimumCurrentLsb('ina219', 3.2), 3.2 / 32767);
  assert.equal(p.calibration, 4194); // trunc(0.04096 / (97.66 µA × 0.1 Ω)) = trunc(4194.3)
  close(p.currentLsbA, 0.04096 / (4194 * 0.1));
  close(p.powerLsbW, 20 * p.currentLsbA);
  assert.ok(p.maxCurrentA >= 3.2);
  // Explicit LSB (the datasheet's "round number" choice) is kept as given.
  assert.deepEqual(planCalibration('ina226', 0.002, 10, 0.001), { calibration: 2560, currentLsbA: 0.001, powerLsbW: 0.025, maxCurrentA: 32.767 });
  assert.throws(() => planCalibration('ina226', 0.0001, 0.01), /raise the current LSB/);
  assert.throws(() => planCalibration('ina219', 0.1, 5, 0.0001), /overflows the current register/);
  // Equation 6: an ammeter read 9.9 A where the chip said 10.0 A.
  assert.equal(correctedCalibration(20480, 10.0, 9.9), 20275);
});

test('register decoding: negative shunt voltages and currents, INA219 CNVR/OVF bits, INA226 CVRF/OVF', () => {
  close(decodeShunt('ina219', 0x8300), -0.32); // −32000 × 10 µV: the PGA /8 negative full scale
  close(decodeShunt('ina219', 0xf830), -0.02);
  close(decodeShunt('ina226', 0xe0c0), -0.02); // −8000 × 2.5 µV
  close(decodeCurrent(0xffff, 0.001), -0.001);
  close(decodeCurrent(0x8000, 0.001), -32.768);
  const b = decodeBus('ina219', 0x5d9b);
  close(b.volts, 11.98);
  assert.deepEqual([b.cnvr, b.ovf], [true, true]);
  assert.deepEqual(decodeMask(0x0008), { cvrf: true, ovf: false });
  assert.deepEqual(decodeMask(0x0004), { cvrf: false, ovf: true });
  const c = ina219Config({ busRangeV: 16, shuntRangeMv: 40, samples: 8 });
  assert.equal(c.config, (0 << 13) | (0 << 11) | (0xb << 7) | (0xb << 3) | 7);
  close(c.periodMs, 8.52);
  assert.throws(() => ina219Config({ busRangeV: 16, shuntRangeMv: 50, samples: 1 }), /shunt range/);
});

test('virtual INA219 reproduces the datasheet table, clears CNVR on a power read, flags OVF, and resets via RST', async () => {
  let src = { v: 11.98, a: 10 };
  const chip = new VirtualIna('ina219', { shuntOhms: 0.002, source: () => src });
  assert.equal(reg(chip, 0), 0x399f);
  // shunt + bus triggered (one conversion per config write): in a continuous mode a slow host could see a new
  // conversion set CNVR again between the two status reads below
  const trigger = () => setReg(chip, 0, 0x019b);
  setReg(chip, 5, 0x5000);
  trigger();
  await sleep(5); // one 12-bit shunt + bus conversion takes 1.06 ms
  assert.equal(reg(chip, 1), 0x07d0);
  assert.equal(reg(chip, 2), 0x5d98 | 2); // CNVR set
  assert.equal(reg(chip, 4), 0x2710);
  assert.equal(reg(chip, 3), 0x1766);
  assert.equal(reg(chip, 2) & 2, 0); // the power read cleared CNVR
  src = { v: 5, a: -3 };
  trigger();
  await sleep(5);
  close(decodeShunt('ina219', reg(chip, 1)), -0.006);
  assert.equal(reg(chip, 4), 0x10000 - 3000);
  src = { v: 5, a: 15 };
  setReg(chip, 5, 0xfffe); // 15 A through 2 mΩ with Cal 65534: 3000 × 65534 / 4096 does not fit the current register
  trigger();
  await sleep(5);
  assert.equal(reg(chip, 2) & 1, 1);
  setReg(chip, 0, 0x8000);
  assert.deepEqual([reg(chip, 0), reg(chip, 5)], [0x399f, 0]);
  setReg(chip, 5, 0x1235);
  assert.equal(reg(chip, 5), 0x1234); // calibration bit 0 is void
});

test('virtual INA226 reproduces the datasheet table; ids, CVRF cleared by reading mask/enable', async () => {
  const chip = new VirtualIna('ina226', { shuntOhms: 0.002, source: () => ({ v: 11.98, a: 10 }) });
  assert.deepEqual([reg(chip, 0xfe), reg(chip, 0xff), reg(chip, 0)], [0x5449, 0x2260, 0x4127]);
  setReg(chip, 5, 0x0a00);
  // 140 µs conversions, no averaging, shunt + bus triggered once: a continuous mode would set CVRF again between
  // the two mask reads below whenever the host is slow (seen under CI load)
  setReg(chip, 0, 0x4003);
  await sleep(5);
  assert.deepEqual([reg(chip, 1), reg(chip, 2), reg(chip, 4), reg(chip, 3)], [0x1f40, 0x2570, 0x2710, 0x12b8]);
  assert.equal(reg(chip, 6) & 8, 8);
  assert.equal(reg(chip, 6) & 8, 0);
});
