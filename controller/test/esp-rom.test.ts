// The ROM loader client against an emulated ESP32 ROM bootloader through a real pty opened with serialport, as
// the flasher will open /dev/ttyUSB0: sync (with retries and the extra SYNC answers drained) -> chip detection ->
// SPI attach -> FLASH_BEGIN -> FLASH_DATA blocks -> MD5 equal to the image's -> FLASH_END; the flash image file
// holds the image and the erased rest of its sectors; a wrong checksum gets the ROM's invalid-CRC status and
// noisy blocks are retried; a wrong chip, a silent board, a corrupted MD5 and a port vanishing mid-flash give
// clear errors, and a second attempt after replug succeeds; paced at 921600 baud the throughput is measured
// against the line rate (92160 B/s).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeSync, openSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SerialPortStream } from '@serialport/stream';
import { NodeLinkBinding } from '../drivers/serial-binding.js';
import { RomClient, RomError, ROM_CMD, ROM_ERROR, payloads, type RomClientOptions } from '../flash/rom-protocol.js';
import { EspRomEmulator, type EspRomOptions } from '../virtual/esp-rom.js';
import { Rng } from '../net/relay-rng.js';

/** Deterministic test data from the project's seeded generator. */
function seededRandom(seed: number): () => number {
  const rng = new Rng(seed);
  return () => rng.next();
}

const dir = mkdtempSync(join(tmpdir(), 'qslab-esp-rom-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

function image(size: number, seed: number): Buffer {
  const rnd = seededRandom(seed);
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = Math.floor(rnd() * 256);
  return b;
}
const md5 = (b: Uint8Array): string => createHash('md5').update(b).digest('hex');

async function openPort(path: string, baudRate = 115200): Promise<SerialPortStream> {
  const port = new SerialPortStream({ binding: NodeLinkBinding, path, baudRate, autoOpen: false, hupcl: false });
  await new Promise<void>((res, rej) => port.open((err) => (err ? rej(err) : res())));
  port.on('error', () => {}); // reported to the client through its own listener
  return port;
}

async function closePort(port: SerialPortStream): Promise<void> {
  if (!port.isOpen) return;
  await new Promise<void>((res) => port.close(() => res()));
}

async function rig(o: Partial<EspRomOptions> = {}, c: RomClientOptions = {}, baud = 115200) {
  const k = n++;
  const emu = new EspRomEmulator({ flashFile: join(dir, `flash${k}.bin`), link: join(dir, `ttyESP${k}`), ...o });
  const path = await emu.start();
  const port = await openPort(path, baud);
  const client = new RomClient(port, { port: path, ...c });
  const done = async (): Promise<void> => {
    client.detach();
    await closePort(port);
    await emu.stop();
  };
  return { emu, path, port, client, done };
}

test('esp-rom: sync -> detect ESP32 -> attach -> begin -> data x N -> md5 -> end, through a real pty', async () => {
  const r = await rig({ syncIgnore: 2 }); // the ROM ignores the first SYNCs, like a real one locking onto the rate
  try {
    const { emu, client } = r;
    const offset = 0x10000;
    // Old content in the last sector the image touches: FLASH_BEGIN must erase it.
    const fd = openSync(emu.opts.flashFile, 'r+');
    writeSync(fd, Buffer.alloc(0x3000, 0x00), 0, 0x3000, offset + 0xe000);
    closeSync(fd);
    const img = image(0xe000 + 1234, 1); // not a multiple of the block or the sector size

    await client.sync();
    assert.equal(client.statusLen, 4, 'the ESP32 ROM sends 4 status bytes');
    assert.ok(emu.stats.syncs >= 3, `SYNC was retried (${emu.stats.syncs} sent)`);
    assert.deepEqual(await client.detectChip('ESP32'), { chip: 'ESP32', magic: 0x00f01d83 });
    await client.spiAttach();
    await client.spiSetParams(4 * 1024 * 1024);
    const progress: number[] = [];
    await client.writeFlash(img, offset, { onProgress: (p) => progress.push(p.block) });
    assert.equal(progress.length, Math.ceil(img.length / 0x400));
    assert.equal(emu.stats.blocks, progress.length);
    assert.equal(await client.md5(offset, img.length), md5(img));
    assert.equal(emu.md5(offset, img.length), md5(img));
    // The rest of the touched sectors is erased (the last block is padded with 0xFF as well); the next sector kept.
    const tail = emu.read(offset + img.length, 0xf000 - img.length);
    assert.ok(tail.every((b) => b === 0xff), 'erased tail');
    assert.ok(emu.read(offset + 0xf000, 0x2000).every((b) => b === 0x00), 'untouched neighbour sector');
    assert.equal(client.stats.stray, 0, 'extra SYNC answers were drained, none taken for another command');

    // A block whose header checksum is wrong: the ROM's invalid-CRC status, named.
    const { payload, checksum } = payloads.flashData(0, Buffer.alloc(0x400, 0x5a));
    await assert.rejects(client.command(ROM_CMD.FLASH_DATA, payload, { checksum: checksum ^ 1 }), (e: RomError) => {
      assert.equal(e.code, 'E_STATUS');
      assert.equal(e.romError, ROM_ERROR.INVALID_CRC);
      assert.match(e.message, /rejected FLASH_DATA: error 0x07, invalid CRC/);
      return true;
    });
    // Line noise on two blocks: retried, the write still completes.
    emu.failBlocks = 2;
    const img2 = image(8 * 0x400, 2);
    await client.writeFlash(img2, 0x200000);
    assert.equal(client.stats.retries, 2);
    await client.flashEnd(false);
  } finally {
    await r.done();
  }
});

test('esp-rom: a wrong chip is named', async () => {
  const r = await rig({ chip: 'ESP32-S2' });
  try {
    await r.client.sync();
    assert.equal(r.client.statusLen, 2);
    await assert.rejects(r.client.detectChip('ESP32'), /wrong chip on .*: expected ESP32, found ESP32-S2 \(magic 0x000007c6\)/);
  } finally {
    await r.done();
  }
});

test('esp-rom: a silent board gives a clear timeout', async () => {
  const r = await rig();
  try {
    r.emu.silent = true;
    const t0 = Date.now();
    await assert.rejects(r.client.sync({ attempts: 5, timeoutMs: 100 }), (e: RomError) => {
      assert.equal(e.code, 'E_TIMEOUT');
      assert.ok(e.message.startsWith(`no answer from the ROM bootloader on ${r.path}: is the board in download mode?`), e.message);
      return true;
    });
    assert.ok(Date.now() - t0 < 2000);
    assert.equal(r.emu.stats.syncs, 5);
  } finally {
    await r.done();
  }
});

test('esp-rom: an MD5 that does not match is reported with both sums', async () => {
  const r = await rig();
  try {
    await r.client.sync();
    await r.client.spiAttach();
    r.emu.corruptMd5 = true;
    const img = image(4 * 0x400, 3);
    await assert.rejects(r.client.writeFlash(img, 0), (e: RomError) => {
      assert.equal(e.code, 'E_MD5');
      assert.match(e.message, new RegExp(`^MD5 mismatch: flash has [0-9a-f]{32}, image has ${md5(img)}`));
      return true;
    });
  } finally {
    await r.done();
  }
});

test('esp-rom: the port vanishing mid-flash is a clear error; after replug a second attempt succeeds', async () => {
  const r = await rig();
  try {
    const img = image(40 * 0x400, 4);
    await r.client.sync();
    await r.client.spiAttach();
    r.emu.unplugAfterBlocks(10);
    await assert.rejects(r.client.writeFlash(img, 0x1000), (e: RomError) => {
      assert.equal(e.code, 'E_CLOSED');
      assert.match(e.message, /vanished during FLASH_DATA block 11\/40/);
      return true;
    });
    r.client.detach();
    await closePort(r.port);
    await r.emu.replug();
    const port = await openPort(r.path);
    const client = new RomClient(port, { port: r.path });
    try {
      await client.sync();
      await client.detectChip('ESP32');
      await client.spiAttach();
      await client.writeFlash(img, 0x1000);
      assert.equal(r.emu.md5(0x1000, img.length), md5(img));
      await client.flashEnd(true);
    } finally {
      client.detach();
      await closePort(port);
    }
  } finally {
    await r.emu.stop();
  }
});

test('esp-rom: throughput paced at 921600 baud vs the line rate', async (t) => {
  const baud = 921600;
  const r = await rig({ baud }, {}, baud);
  try {
    await r.client.sync();
    await r.client.spiAttach();
    const img = image(192 * 1024, 5);
    const { blocks, blockSize } = await r.client.flashBegin(img.length, 0);
    const t0 = performance.now();
    for (let s = 0; s < blocks; s++) await r.client.flashBlock(img.subarray(s * blockSize, (s + 1) * blockSize), s, { blocks });
    const secs = (performance.now() - t0) / 1000;
    await r.client.verify(0, img);
    await r.client.flashEnd(false);
    const line = baud / 10;
    const rate = img.length / secs;
    const wireIn = r.emu.stats.bytesIn;
    t.diagnostic(`image ${img.length} B in ${secs.toFixed(3)} s: ${Math.round(rate)} B/s of image = ${((100 * rate) / line).toFixed(1)} % of the ${line} B/s line rate (${wireIn} B on the wire to the chip in the whole session)`);
    // The upper bound proves the pacing holds (nothing is faster than the line); the lower one is the 80 %.
    assert.ok(rate <= line * 1.01, `faster than the line: ${rate}`);
    assert.ok(rate >= 0.8 * line, `throughput ${Math.round(rate)} B/s is below 80 % of the line rate ${line} B/s`);
  } finally {
    await r.done();
  }
});
