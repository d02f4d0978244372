// Flashing a real ESP32 / ESP32-S3 node on its serial port (the rig's `port:`), the way `esptool.py --no-stub
// write_flash 0x10000 app.bin` does it: classic DTR/RTS auto-reset into the ROM UART bootloader, SYNC, chip
// detection, SPI attach + params, optional CHANGE_BAUDRATE, FLASH_BEGIN/FLASH_DATA at the app offset, MD5 of the
// written region compared with the image's, FLASH_END (reboot) and a hard reset (EN pulse via RTS).
//
// Why our own implementation (RomClient, rom-protocol.ts) and not esptool-js or the esptool executable:
//  - no Web Serial shim: esptool-js talks to a Web-Serial-shaped transport and would need an adapter around
//    serialport, plus its stub loader blobs;
//  - no Python dependency on the lab machine (the `esptool` executable may come later as an optional path via
//    execa, e.g. for the stub loader's compressed, faster writes);
//  - the same code is exercised by the emulated ROM bootloader (virtual/esp-rom.ts) in tests and on the virtual
//    rig (VirtualFlasher), so what the lab runs is what CI runs.
//
// Image (EspAppImage): an ESP-IDF application image (.bin, what `idf.py build` leaves in build/<project>.bin),
// checked for the 0xE9 magic at offset 0; a qslab .qsimg is refused for serial nodes. Layout used here:
//   0x00  u8 0xE9, u8 segment count, u8 SPI mode, u8 size/freq, u32 entry point
//   0x08  extended header (16 bytes): ... u16 chip id at 0x0C (0 = ESP32, 9 = ESP32-S3) ...
//   0x18  first segment header: u32 load address, u32 length; its data starts at 0x20
//   0x20  esp_app_desc_t (ESP-IDF puts it first in the first segment): u32 magic 0xABCD5432, u32 secure_version,
//         u32 reserved[2], char version[32] (at 0x30), char project_name[32] (at 0x50), time, date, idf_ver, ...
// Build hash contract for firmware/ports/esp32: the app's PROJECT_VER (esp_app_desc_t.version) is the qslab
// build hash, 1-16 lower-case hex digits (the same string hello reports as `build`), project_name "qslab-node".
// When the image carries such a version, `qslab flash` skips a node whose hello already reports it (unless
// --force) and checks hello after the flash; an image without it is always flashed and hello's build is only
// reported, never compared.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { SerialPortStream } from '@serialport/stream';
import { NodeLinkBinding } from '../drivers/serial-binding.js';
import { RomClient, RomError } from './rom-protocol.js';
import { APP_OFFSET } from './image.js';

export const ESP_IMAGE_MAGIC = 0xe9;
export const ESP_APP_DESC_MAGIC = 0xabcd5432;
/** Offset of esp_app_desc_t in an app image (data of the first segment). */
export const APP_DESC_OFFSET = 0x20;
/** Chip id of the image's extended header per ROM chip name. */
export const ESP_CHIP_ID: Record<string, number> = { ESP32: 0, 'ESP32-S2': 2, 'ESP32-C3': 5, 'ESP32-S3': 9 };
/** ROM chip expected per rig board. */
export const BOARD_CHIP: Record<string, string> = { esp32: 'ESP32', esp32s3: 'ESP32-S3' };

export interface EspAppImage {
  format: 'esp-idf';
  /** qslab build hash from esp_app_desc_t.version, or null when the image does not carry one. */
  hash: string | null;
  bytes: Buffer;
  /** esp_app_desc_t fields when present. */
  version?: string;
  project?: string;
  chipId: number;
  md5: string;
}

const cstr = (b: Buffer, at: number, len: number): string => {
  const s = b.subarray(at, at + len);
  const z = s.indexOf(0);
  return s.subarray(0, z < 0 ? s.length : z).toString('latin1');
};

/** Parses an ESP-IDF app image; throws with a clear message when it is not one (e.g. a .qsimg). */
export function parseEspImage(buf: Buffer, where = 'image'): EspAppImage {
  if (buf.length >= 8 && buf.subarray(0, 8).toString('latin1') === 'QSVIMG1\0') {
    throw new Error(`${where} is a qslab virtual image (.qsimg), which only virtual nodes run; a serial ESP32 node needs the ESP-IDF app image (.bin, magic 0xE9) built from firmware/ports/esp32`);
  }
  if (buf.length < 0x18 || buf[0] !== ESP_IMAGE_MAGIC) {
    throw new Error(`${where} is not an ESP-IDF app image: expected magic 0xE9 at offset 0, found ${buf.length ? `0x${buf[0]!.toString(16).padStart(2, '0')}` : 'an empty file'}`);
  }
  const segments = buf[1]!;
  if (segments < 1 || segments > 16) throw new Error(`${where}: implausible segment count ${segments} in the ESP image header`);
  const chipId = buf.readUInt16LE(0x0c);
  let hash: string | null = null;
  let version: string | undefined;
  let project: string | undefined;
  if (buf.length >= APP_DESC_OFFSET + 0x70 && buf.readUInt32LE(APP_DESC_OFFSET) === ESP_APP_DESC_MAGIC) {
    version = cstr(buf, APP_DESC_OFFSET + 0x10, 32);
    project = cstr(buf, APP_DESC_OFFSET + 0x30, 32);
    if (/^[0-9a-f]{1,16}$/.test(version)) hash = version;
  }
  return { format: 'esp-idf', hash, bytes: buf, version, project, chipId, md5: createHash('md5').update(buf).digest('hex') };
}

export function readEspImage(file: string): EspAppImage {
  return parseEspImage(readFileSync(file), file);
}

/** True when the buffer starts like an ESP-IDF image (for picking the parser). */
export function looksLikeEspImage(head: Buffer): boolean {
  return head.length > 0 && head[0] === ESP_IMAGE_MAGIC;
}

/**
 * A minimal, well-formed ESP-IDF app image (tests, docs): header (chip id), one segment that starts with an
 * esp_app_desc_t whose version is `version`, then `payload`.
 */
export function buildEspImage(o: { version: string; project?: string; chip?: string; payload?: Buffer }): Buffer {
  const desc = Buffer.alloc(256);
  desc.writeUInt32LE(ESP_APP_DESC_MAGIC, 0);
  desc.write(o.version.slice(0, 31), 0x10, 'latin1');
  desc.write((o.project ?? 'qslab-node').slice(0, 31), 0x30, 'latin1');
  const data = Buffer.concat([desc, o.payload ?? Buffer.alloc(0)]);
  const padded = Buffer.concat([data, Buffer.alloc((4 - (data.length % 4)) % 4)]);
  const h = Buffer.alloc(0x18);
  h[0] = ESP_IMAGE_MAGIC;
  h[1] = 1;
  h[2] = 2; // DIO
  h[3] = 0x20; // 4 MB, 40 MHz
  h.writeUInt32LE(0x400d0018, 4);
  h[8] = 0xee; // WP pin: not used
  h.writeUInt16LE(ESP_CHIP_ID[o.chip ?? 'ESP32'] ?? 0, 0x0c);
  const seg = Buffer.alloc(8);
  seg.writeUInt32LE(0x3f400020, 0);
  seg.writeUInt32LE(padded.length, 4);
  // Checksum byte (XOR 0xEF of the segment data) in the last byte of a 16-byte aligned trailer.
  let ck = 0xef;
  for (const b of padded) ck ^= b;
  const body = Buffer.concat([h, seg, padded]);
  const trailer = Buffer.alloc(16 - (body.length % 16));
  trailer[trailer.length - 1] = ck;
  return Buffer.concat([body, trailer]);
}

export interface EsptoolOptions {
  /** 'auto': classic DTR/RTS reset into download mode (and EN pulse at the end); 'none': the board is already there. */
  reset?: 'auto' | 'none';
  /** Line rate while writing (CHANGE_BAUDRATE after sync); 0 or 115200: stay at 115200. Default 460800. */
  baud?: number;
  /** Reset + sync rounds before giving up (default 3). */
  attempts?: number;
  /** SYNC packets per round and the wait for each (default 7 × 100 ms, as esptool). */
  syncAttempts?: number;
  syncTimeoutMs?: number;
  /** Flash size passed to SPI_SET_PARAMS (default 4 MB). */
  flashSize?: number;
  /** Progress and notes (e.g. the DTR/RTS note). */
  onNote?: (msg: string) => void;
  onProgress?: (bytes: number, total: number) => void;
}

export interface EsptoolTarget {
  name: string;
  board: string;
  port: string;
}

export interface EsptoolResult {
  node: string;
  port: string;
  chip: string;
  bytes: number;
  md5: string;
  /** FLASH_BEGIN → last block → MD5. */
  writeMs: number;
  bytesPerS: number;
  baud: number;
  /** Reset + sync rounds needed. */
  rounds: number;
  /** DTR/RTS could be toggled (false on a pty or an adapter without the lines). */
  linesOk: boolean;
  notes: string[];
  ms: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const ROM_BAUD = 115200;

/** Writes an ESP-IDF app image through the ROM bootloader on a node's serial port; the port is closed after. */
export class EsptoolFlasher {
  constructor(readonly opts: EsptoolOptions = {}) {}

  async write(target: EsptoolTarget, image: EspAppImage): Promise<EsptoolResult> {
    const t0 = performance.now();
    const { name, port: path } = target;
    const expect = BOARD_CHIP[target.board];
    if (!expect) throw new Error(`${name}: board ${target.board} is not an ESP32 (the esptool flasher handles esp32 and esp32s3)`);
    const wantId = ESP_CHIP_ID[expect];
    if (image.chipId !== wantId) {
      const built = Object.entries(ESP_CHIP_ID).find(([, v]) => v === image.chipId)?.[0] ?? `chip id ${image.chipId}`;
      throw new Error(`${name}: the image is built for ${built}, the node is ${target.board} (${expect})`);
    }
    const notes: string[] = [];
    const note = (m: string): void => {
      notes.push(m);
      this.opts.onNote?.(m);
    };
    const reset = this.opts.reset ?? 'auto';
    const baud = this.opts.baud ?? 460800;
    const attempts = this.opts.attempts ?? 3;
    const port = new SerialPortStream({ binding: NodeLinkBinding, path, baudRate: ROM_BAUD, autoOpen: false, hupcl: false });
    try {
      await new Promise<void>((res, rej) => port.open((err) => (err ? rej(err) : res())));
    } catch (e) {
      throw new Error(`${name}: cannot open ${path}: ${(e as Error).message}`);
    }
    port.on('error', () => {}); // the client reports it through its own listener
    const lines = { dtr: false, rts: false };
    let linesOk = reset === 'auto';
    /** serialport's set() sets every line at once: keep the state, change one line per call (as esptool does). */
    const setLines = async (change: Partial<typeof lines>): Promise<void> => {
      Object.assign(lines, change);
      await new Promise<void>((res, rej) => port.set({ dtr: lines.dtr, rts: lines.rts, brk: false }, (err) => (err ? rej(err) : res())));
    };
    const client = new RomClient(port, {
      port: `${name} (${path})`,
      setBaud: (b) => new Promise<void>((res, rej) => port.update({ baudRate: b }, (err) => (err ? rej(err) : res()))),
    });
    let writeMs = 0;
    let rounds = 0;
    let chip = '';
    let lineBaud = ROM_BAUD;
    try {
      // Reset into download mode + sync, up to `attempts` rounds.
      for (;;) {
        rounds++;
        if (reset === 'auto' && linesOk) {
          try {
            // Classic reset (esptool): DTR drives IO0, RTS drives EN, both inverted by the board's transistors.
            await setLines({ dtr: false }); // IO0 high
            await setLines({ rts: true }); // EN low: chip in reset
            await sleep(100);
            await setLines({ dtr: true }); // IO0 low
            await setLines({ rts: false }); // EN high: chip boots, samples IO0 low → download mode
            await sleep(50);
            await setLines({ dtr: false }); // IO0 released
          } catch (e) {
            linesOk = false;
            note(`could not toggle DTR/RTS on ${path} (${(e as Error).message}): if the board is not already in download mode, hold BOOT and tap EN`);
          }
        }
        try {
          await client.sync({ attempts: this.opts.syncAttempts, timeoutMs: this.opts.syncTimeoutMs });
          break;
        } catch (e) {
          if ((e as RomError).code !== 'E_TIMEOUT') throw e;
          if (rounds >= attempts) {
            const how = reset === 'auto' && linesOk ? 'auto-reset via DTR/RTS did not bring it there' : 'hold BOOT and tap EN, then retry';
            throw new RomError('E_TIMEOUT', `no answer from the ROM bootloader on ${path} after ${rounds} reset+sync rounds: the board is not in download mode (${how}; ${(e as Error).message})`);
          }
        }
      }
      chip = (await client.detectChip(expect)).chip;
      await client.spiAttach();
      await client.spiSetParams(this.opts.flashSize ?? 4 * 1024 * 1024);
      if (baud && baud !== ROM_BAUD) {
        await client.changeBaudrate(baud);
        lineBaud = baud;
      }
      const w0 = performance.now();
      await client.writeFlash(image.bytes, APP_OFFSET, { onProgress: (p) => this.opts.onProgress?.(p.bytes, p.total) });
      writeMs = performance.now() - w0;
      await client.flashEnd(true);
      if (reset === 'auto' && linesOk) {
        try {
          // Hard reset: EN pulse with IO0 high, the chip boots the new application.
          await setLines({ dtr: false, rts: true });
          await sleep(100);
          await setLines({ rts: false });
        } catch (e) {
          note(`could not pulse EN via RTS on ${path} (${(e as Error).message}): the ROM was told to reboot; tap EN if the app does not start`);
        }
      }
    } catch (e) {
      const msg = (e as Error).message;
      throw Object.assign(new Error(`${name}: flashing failed: ${msg}`), { code: (e as RomError).code });
    } finally {
      client.detach();
      if (port.isOpen) await new Promise<void>((res) => port.close(() => res()));
    }
    return {
      node: name, port: path, chip, bytes: image.bytes.length, md5: image.md5, writeMs,
      bytesPerS: writeMs > 0 ? image.bytes.length / (writeMs / 1000) : 0, baud: lineBaud, rounds, linesOk, notes, ms: performance.now() - t0,
    };
  }
}
