// EsptoolFlasher (flash/esptool.ts) against the emulated ESP32 ROM bootloader on a real pty, opened by path as a
// /dev/ttyUSB0 would be: an ESP-IDF format image (0xE9 header, one segment starting with esp_app_desc_t whose
// version is the build hash) is written at 0x10000 and MD5 verified; reset 'auto' on a pty cannot toggle DTR/RTS
// (the note says so) and still flashes since the emulator is in download mode; reset 'none'; a wrong chip, a
// silent board (after 3 reset+sync rounds), a port vanishing mid-flash give clear errors with the port closed
// (a second flash after replug succeeds); CHANGE_BAUDRATE to 921600 on the paced emulator; image parsing refuses
// a .qsimg and a non-0xE9 file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EspRomEmulator, type EspRomOptions } from '../virtual/esp-rom.js';
import { buildEspImage, EsptoolFlasher, parseEspImage, type EsptoolOptions } from '../flash/esptool.js';
import { packVirtualImage, APP_OFFSET } from '../flash/image.js';

const dir = mkdtempSync(join(tmpdir(), 'qslab-esptool-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

function payload(size: number, seed: number): Buffer {
  const b = Buffer.alloc(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}

async function emulator(o: Partial<EspRomOptions> = {}) {
  const k = n++;
  const emu = new EspRomEmulator({ flashFile: join(dir, `flash${k}.bin`), link: join(dir, `ttyUSB${k}`), ...o });
  const path = await emu.start();
  return { emu, path };
}

const HASH = 'e5b0000000c0ffee';
const img = parseEspImage(buildEspImage({ version: HASH, payload: payload(40 * 1024 + 123, 7) }), 'test.bin');
const fast: EsptoolOptions = { baud: 0, syncAttempts: 3 };

test('esptool: image parsing (app desc version = build hash, .qsimg and non-0xE9 refused)', () => {
  assert.equal(img.hash, HASH);
  assert.equal(img.project, 'qslab-node');
  assert.equal(img.chipId, 0);
  assert.equal(img.bytes[0], 0xe9);
  assert.equal(img.bytes.readUInt32LE(0x20), 0xabcd5432);
  assert.equal(parseEspImage(buildEspImage({ version: 'v1.2.3' })).hash, null, 'a non-hex version is no build hash: never skipped');
  assert.throws(() => parseEspImage(packVirtualImage(Buffer.from('elf'), 'abc').bytes, 'x.qsimg'), /x\.qsimg is a qslab virtual image \(\.qsimg\).*ESP-IDF app image/);
  assert.throws(() => parseEspImage(Buffer.alloc(64, 0x7f), 'x.bin'), /not an ESP-IDF app image: expected magic 0xE9 at offset 0, found 0x7f/);
});

test('esptool: reset auto on a pty notes the DTR/RTS failure and still flashes; MD5 verified, image at 0x10000', async () => {
  const { emu, path } = await emulator({ syncIgnore: 2 });
  try {
    const notes: string[] = [];
    const r = await new EsptoolFlasher({ ...fast, reset: 'auto', onNote: (m) => notes.push(m) }).write({ name: 'n1', board: 'esp32', port: path }, img);
    assert.equal(r.linesOk, false);
    assert.equal(notes.length, 1);
    assert.match(notes[0]!, new RegExp(`^could not toggle DTR/RTS on ${path.replace(/[/.]/g, '\\$&')} \\(.+\\): if the board is not already in download mode, hold BOOT and tap EN$`));
    assert.equal(r.chip, 'ESP32');
    assert.equal(r.bytes, img.bytes.length);
    assert.equal(emu.md5(APP_OFFSET, img.bytes.length), img.md5);
    assert.ok(emu.read(APP_OFFSET, img.bytes.length).equals(img.bytes));
    assert.equal(emu.stats.blocks, Math.ceil(img.bytes.length / 0x400));
    console.log(`esptool auto (pty): ${r.bytes} B in ${r.writeMs.toFixed(0)} ms write, ${r.ms.toFixed(0)} ms total, rounds ${r.rounds}`);
  } finally {
    await emu.stop();
  }
});

test('esptool: reset none flashes without touching the lines', async () => {
  const { emu, path } = await emulator();
  try {
    const notes: string[] = [];
    const r = await new EsptoolFlasher({ ...fast, reset: 'none', onNote: (m) => notes.push(m) }).write({ name: 'n2', board: 'esp32', port: path }, img);
    assert.deepEqual(notes, []);
    assert.equal(r.rounds, 1);
    assert.equal(emu.md5(APP_OFFSET, img.bytes.length), img.md5);
  } finally {
    await emu.stop();
  }
});

test('esptool: wrong chip (ESP32-S3 answers for an esp32 node); image for the wrong chip refused', async () => {
  const { emu, path } = await emulator({ chip: 'ESP32-S3' });
  try {
    await assert.rejects(new EsptoolFlasher({ ...fast, reset: 'none' }).write({ name: 'n3', board: 'esp32', port: path }, img),
      /^Error: n3: flashing failed: wrong chip on n3 \(.+\): expected ESP32, found ESP32-S3/);
    assert.equal(emu.stats.blocks, 0);
    await assert.rejects(new EsptoolFlasher({ ...fast, reset: 'none' }).write({ name: 'n3', board: 'esp32s3', port: path }, img),
      /n3: the image is built for ESP32, the node is esp32s3 \(ESP32-S3\)/);
    // An S3 image on the S3 node goes through.
    const s3 = parseEspImage(buildEspImage({ version: HASH, chip: 'ESP32-S3', payload: payload(3000, 3) }));
    const r = await new EsptoolFlasher({ ...fast, reset: 'none' }).write({ name: 'n3', board: 'esp32s3', port: path }, s3);
    assert.equal(r.chip, 'ESP32-S3');
    await assert.rejects(new EsptoolFlasher({ ...fast, reset: 'none' }).write({ name: 'r1', board: 'rpi4', port: path }, img), /not an ESP32/);
  } finally {
    await emu.stop();
  }
});

test('esptool: a silent board gives a clear timeout after 3 reset+sync rounds', async () => {
  const { emu, path } = await emulator();
  emu.silent = true;
  try {
    const t0 = performance.now();
    await assert.rejects(new EsptoolFlasher({ ...fast, reset: 'auto' }).write({ name: 'n4', board: 'esp32', port: path }, img), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'E_TIMEOUT');
      assert.match(e.message, /^n4: flashing failed: no answer from the ROM bootloader on .+ after 3 reset\+sync rounds: the board is not in download mode \(hold BOOT and tap EN, then retry/);
      return true;
    });
    assert.equal(emu.stats.syncs, 9, '3 rounds of 3 SYNCs');
    console.log(`esptool silent: gave up after ${(performance.now() - t0).toFixed(0)} ms`);
  } finally {
    await emu.stop();
  }
});

test('esptool: the port vanishing mid-flash fails clearly, the port is closed, a flash after replug succeeds', async () => {
  const { emu, path } = await emulator();
  try {
    emu.unplugAfterBlocks(10);
    await assert.rejects(new EsptoolFlasher({ ...fast, reset: 'none' }).write({ name: 'n5', board: 'esp32', port: path }, img), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'E_CLOSED');
      assert.match(e.message, /^n5: flashing failed: n5 \(.+\) vanished during FLASH_DATA block 1[01]\/41/);
      return true;
    });
    await emu.replug();
    const r = await new EsptoolFlasher({ ...fast, reset: 'none' }).write({ name: 'n5', board: 'esp32', port: path }, img);
    assert.equal(r.bytes, img.bytes.length);
    assert.equal(emu.md5(APP_OFFSET, img.bytes.length), img.md5);
  } finally {
    await emu.stop();
  }
});

test('esptool: CHANGE_BAUDRATE 115200 -> 921600 on the paced emulator', async () => {
  const { emu, path } = await emulator({ baud: 115200 });
  try {
    const r = await new EsptoolFlasher({ reset: 'none', baud: 921600 }).write({ name: 'n6', board: 'esp32', port: path }, img);
    assert.equal(r.baud, 921600);
    assert.equal(emu.stats.baud, 921600);
    assert.equal(emu.md5(APP_OFFSET, img.bytes.length), img.md5);
    const line = 921600 / 10;
    console.log(`esptool 921600 paced: ${r.bytes} B in ${r.writeMs.toFixed(0)} ms = ${(r.bytesPerS / 1024).toFixed(1)} KiB/s (${((100 * r.bytesPerS) / line).toFixed(0)} % of the line rate)`);
    assert.ok(r.bytesPerS > 0.3 * line, `throughput ${r.bytesPerS.toFixed(0)} B/s at 921600 baud`);
    assert.ok(r.bytesPerS < 1.05 * line, 'paced: not faster than the line');
  } finally {
    await emu.stop();
  }
});
