// An ESP32's ROM UART bootloader on a real pty, speaking flash/rom-protocol.ts byte for byte: SLIP frames,
// 8 answers per SYNC, READ_REG of the chip magic (configurable, to test "wrong chip"), SPI_ATTACH,
// SPI_SET_PARAMS, FLASH_BEGIN (erases the covered 4 KiB sectors of a flash image file to 0xFF), FLASH_DATA
// (checksum checked: a wrong one gets the ROM's "invalid CRC" status), FLASH_END, SPI_FLASH_MD5 (32 hex
// characters, as the ROM sends), CHANGE_BAUDRATE. Optional pacing moves bytes at a baud rate (10 bits a byte) in
// both directions so a flasher's throughput can be compared with the line rate; a pty itself ignores the baud.
// Fault hooks: silent (answers nothing), corruptMd5, unplugAfterBlocks(n), failBlocks(n) (line noise on blocks).
import { createHash } from 'node:crypto';
import { closeSync, existsSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import { SlipDecoder, slipEncode } from '../flash/slip.js';
import {
  buildResponse, CHIP_DETECT_MAGIC_REG, CHIP_MAGIC, FLASH_SECTOR, parseCommand, ROM_CMD, ROM_ERROR, romChecksum, SYNC_PAYLOAD,
} from '../flash/rom-protocol.js';
import { PtyEndpoint } from './pty.js';

/** Runs callbacks in order at given performance.now() times, sub-millisecond (timers only reach ms). */
class Pacer {
  private q: { at: number; fn: () => void }[] = [];
  private armed = false;

  at(t: number, fn: () => void): void {
    this.q.push({ at: t, fn });
    if (!this.armed) this.pump();
  }

  clear(): void {
    this.q = [];
  }

  private pump = (): void => {
    this.armed = false;
    while (this.q.length && this.q[0]!.at <= performance.now()) this.q.shift()!.fn();
    if (!this.q.length) return;
    this.armed = true;
    const wait = this.q[0]!.at - performance.now();
    if (wait > 2) setTimeout(this.pump, wait - 1.5);
    else setImmediate(this.pump);
  };
}

export interface EspRomOptions {
  /** Flash image file; created (erased, 0xFF) when missing or of another size. */
  flashFile: string;
  flashSize?: number;
  /** Chip name from CHIP_MAGIC, or a raw magic value. Default ESP32. */
  chip?: string | number;
  /** Status bytes per answer: the ESP32 ROM sends 4, the others 2. */
  statusLen?: 2 | 4;
  /** Answers per SYNC (the ESP32 ROM sends 8). */
  syncReplies?: number;
  /** SYNCs ignored before the first answer (the ROM needs a few to lock onto the baud rate). */
  syncIgnore?: number;
  /** Pace both directions at this baud (10 bits per byte); 0 or undefined: as fast as the pty goes. */
  baud?: number;
  link?: string;
  name?: string;
}

export interface EspRomStats {
  commands: number;
  syncs: number;
  blocks: number;
  badChecksums: number;
  badFrames: number;
  bytesIn: number;
  bytesOut: number;
  baud: number;
}

export class EspRomEmulator {
  readonly pty: PtyEndpoint;
  readonly stats: EspRomStats;
  readonly flashSize: number;
  /** Fault: answer nothing at all (a board not in download mode). */
  silent = false;
  /** Fault: the next MD5 answers have one hex digit changed. */
  corruptMd5 = false;
  /** Fault: answer the next n FLASH_DATA with "invalid CRC" (as line noise would). */
  failBlocks = 0;
  private unplugAfter?: number;
  private readonly magic: number;
  private readonly statusLen: 2 | 4;
  private decoder!: SlipDecoder;
  private fd?: number;
  private begin?: { offset: number; blocks: number; blockSize: number };
  private running = false; // FLASH_END with reboot: the app runs, the loader no longer listens
  private syncsSeen = 0;
  private inFreeAt = 0;
  private outFreeAt = 0;
  /** Line time at which the chunk being decoded had fully arrived (paced mode). */
  private arrivedAt = 0;
  private readonly inLine = new Pacer();
  private readonly outLine = new Pacer();
  /** unplugAfterBlocks fired: the cable is being pulled, nothing more is answered. */
  private gone = false;
  readonly regs = new Map<number, number>();

  constructor(readonly opts: EspRomOptions) {
    this.pty = new PtyEndpoint({ link: opts.link, name: opts.name ?? 'esp-rom' });
    this.flashSize = opts.flashSize ?? 4 * 1024 * 1024;
    const chip = opts.chip ?? 'ESP32';
    if (typeof chip === 'number') this.magic = chip >>> 0;
    else {
      const m = CHIP_MAGIC[chip];
      if (!m) throw new Error(`esp-rom: unknown chip "${chip}" (known: ${Object.keys(CHIP_MAGIC).join(', ')})`);
      this.magic = m[0]!;
    }
    this.statusLen = opts.statusLen ?? (chip === 'ESP32' || this.magic === CHIP_MAGIC.ESP32![0] ? 4 : 2);
    this.stats = { commands: 0, syncs: 0, blocks: 0, badChecksums: 0, badFrames: 0, bytesIn: 0, bytesOut: 0, baud: opts.baud ?? 0 };
    this.regs.set(CHIP_DETECT_MAGIC_REG, this.magic);
    this.reset();
    this.pty.on('data', (b: Buffer) => this.onWire(b));
    this.pty.on('plug', () => this.reset());
  }

  get path(): string {
    return this.pty.path;
  }

  async start(): Promise<string> {
    this.openFlash();
    return this.pty.start();
  }

  /** Fault: after n more FLASH_DATA blocks were answered, the port vanishes (the fault then clears). */
  unplugAfterBlocks(n: number): void {
    this.unplugAfter = n;
  }

  unplug(): Promise<void> {
    return this.pty.unplug();
  }

  replug(): Promise<string> {
    return this.pty.replug();
  }

  async stop(): Promise<void> {
    await this.pty.stop();
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  /** A chip reset into download mode: no write in progress, sync needed again. */
  reset(): void {
    this.decoder = new SlipDecoder({ onFrame: (f) => this.onFrame(f), onProblem: () => this.stats.badFrames++ });
    this.begin = undefined;
    this.running = false;
    this.syncsSeen = 0;
    this.inFreeAt = 0;
    this.outFreeAt = 0;
    this.gone = false;
    this.inLine.clear();
    this.outLine.clear();
  }

  /** MD5 (hex) of a region of the flash image, read from the file. */
  md5(offset: number, size: number): string {
    return createHash('md5').update(this.read(offset, size)).digest('hex');
  }

  read(offset: number, size: number): Buffer {
    const b = Buffer.alloc(size);
    readSync(this.fd!, b, 0, size, offset);
    return b;
  }

  private openFlash(): void {
    if (this.fd !== undefined) return;
    const f = this.opts.flashFile;
    const fresh = !existsSync(f);
    this.fd = openSync(f, fresh ? 'w+' : 'r+');
    if (fresh || fstatSync(this.fd).size !== this.flashSize) {
      const erased = Buffer.alloc(64 * 1024, 0xff);
      for (let o = 0; o < this.flashSize; o += erased.length) writeSync(this.fd, erased, 0, Math.min(erased.length, this.flashSize - o), o);
    }
  }

  private byteMs(): number {
    return this.stats.baud > 0 ? 10_000 / this.stats.baud : 0;
  }

  private onWire(chunk: Buffer): void {
    this.stats.bytesIn += chunk.length;
    const t = this.byteMs();
    if (!t) return this.decoder.push(chunk);
    // The last byte of this chunk is in only when the line had time to carry it.
    const now = performance.now();
    this.inFreeAt = Math.max(this.inFreeAt, now) + chunk.length * t;
    const decoder = this.decoder;
    const at = this.inFreeAt;
    this.inLine.at(at, () => {
      this.arrivedAt = at;
      decoder.push(chunk);
    });
  }

  private send(pkt: Buffer): void {
    const wire = slipEncode(pkt);
    this.stats.bytesOut += wire.length;
    const t = this.byteMs();
    if (!t) {
      this.pty.write(wire);
      return;
    }
    // An answer starts once the command is in (line time, not the moment this code ran) and the line is free.
    this.outFreeAt = Math.max(this.outFreeAt, this.arrivedAt) + wire.length * t;
    const pty = this.pty;
    this.outLine.at(this.outFreeAt, () => pty.write(wire));
  }

  private reply(cmd: number, value = 0, data: Uint8Array = Buffer.alloc(0)): void {
    this.send(buildResponse(cmd, value, data, { failed: false, error: 0 }, this.statusLen));
  }

  private error(cmd: number, error: number): void {
    this.send(buildResponse(cmd, 0, Buffer.alloc(0), { failed: true, error }, this.statusLen));
  }

  private onFrame(frame: Buffer): void {
    if (this.running || this.gone) return;
    const c = parseCommand(frame);
    if (typeof c === 'string') {
      this.stats.badFrames++;
      return; // the ROM drops what it cannot parse
    }
    this.stats.commands++;
    if (this.silent) {
      if (c.cmd === ROM_CMD.SYNC) this.stats.syncs++;
      return;
    }
    const p = c.payload;
    const u32 = (i: number): number => p.readUInt32LE(4 * i);
    const need = (n: number): boolean => {
      if (p.length >= n) return true;
      this.error(c.cmd, ROM_ERROR.INVALID_MESSAGE);
      return false;
    };
    switch (c.cmd) {
      case ROM_CMD.SYNC: {
        if (p.length !== SYNC_PAYLOAD.length || !p.equals(SYNC_PAYLOAD)) return this.error(c.cmd, ROM_ERROR.INVALID_MESSAGE);
        this.stats.syncs++;
        if (this.syncsSeen++ < (this.opts.syncIgnore ?? 0)) return;
        for (let i = 0; i < (this.opts.syncReplies ?? 8); i++) this.reply(c.cmd, 0x20120707);
        return;
      }
      case ROM_CMD.READ_REG:
        if (!need(4)) return;
        return this.reply(c.cmd, this.regs.get(u32(0)) ?? 0);
      case ROM_CMD.WRITE_REG: {
        if (!need(16)) return;
        const old = this.regs.get(u32(0)) ?? 0;
        const mask = u32(2);
        this.regs.set(u32(0), ((old & ~mask) | (u32(1) & mask)) >>> 0);
        return this.reply(c.cmd);
      }
      case ROM_CMD.SPI_ATTACH:
        if (!need(8)) return;
        return this.reply(c.cmd);
      case ROM_CMD.SPI_SET_PARAMS:
        if (!need(24)) return;
        return this.reply(c.cmd);
      case ROM_CMD.CHANGE_BAUDRATE: {
        if (!need(8)) return;
        this.reply(c.cmd); // at the old rate; the new one applies after
        if (this.stats.baud > 0) this.stats.baud = u32(0);
        return;
      }
      case ROM_CMD.FLASH_BEGIN: {
        if (!need(16)) return;
        const [size, blocks, blockSize, offset] = [u32(0), u32(1), u32(2), u32(3)];
        if (blockSize === 0 || offset + size > this.flashSize || blocks * blockSize < size) return this.error(c.cmd, ROM_ERROR.INVALID_MESSAGE);
        const start = Math.floor(offset / FLASH_SECTOR) * FLASH_SECTOR;
        const end = Math.min(this.flashSize, Math.ceil((offset + size) / FLASH_SECTOR) * FLASH_SECTOR);
        const erased = Buffer.alloc(FLASH_SECTOR, 0xff);
        for (let o = start; o < end; o += FLASH_SECTOR) writeSync(this.fd!, erased, 0, FLASH_SECTOR, o);
        this.begin = { offset, blocks, blockSize };
        return this.reply(c.cmd);
      }
      case ROM_CMD.FLASH_DATA: {
        if (!need(16)) return;
        const [size, seq] = [u32(0), u32(1)];
        const data = p.subarray(16);
        if (data.length !== size) return this.error(c.cmd, ROM_ERROR.INVALID_MESSAGE);
        if (romChecksum(data) !== c.checksum) {
          this.stats.badChecksums++;
          return this.error(c.cmd, ROM_ERROR.INVALID_CRC);
        }
        if (this.failBlocks > 0) {
          this.failBlocks--;
          this.stats.badChecksums++;
          return this.error(c.cmd, ROM_ERROR.INVALID_CRC);
        }
        const b = this.begin;
        if (!b) return this.error(c.cmd, ROM_ERROR.FAILED_TO_ACT);
        const at = b.offset + seq * b.blockSize;
        if (seq >= b.blocks || size > b.blockSize || at + size > this.flashSize) return this.error(c.cmd, ROM_ERROR.FLASH_WRITE);
        writeSync(this.fd!, data, 0, size, at);
        this.stats.blocks++;
        this.reply(c.cmd);
        if (this.unplugAfter !== undefined && --this.unplugAfter <= 0) {
          this.unplugAfter = undefined;
          this.gone = true;
          // After the answer left (paced or not), the cable goes.
          const wait = Math.max(0, this.outFreeAt - performance.now()) + 5;
          setTimeout(() => void this.pty.unplug(), wait);
        }
        return;
      }
      case ROM_CMD.FLASH_END: {
        if (!need(4)) return;
        if (!this.begin) return this.error(c.cmd, ROM_ERROR.FAILED_TO_ACT);
        this.begin = undefined;
        this.reply(c.cmd);
        if (u32(0) === 0) {
          this.running = true; // reboots into the freshly written application
          const t = performance.now();
          const wait = Math.max(0, this.outFreeAt - t) + 2;
          setTimeout(() => this.pty.write('ets Jun  8 2016 00:22:57\r\n\r\nrst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\r\n'), wait);
        }
        return;
      }
      case ROM_CMD.SPI_FLASH_MD5: {
        if (!need(16)) return;
        const [offset, size] = [u32(0), u32(1)];
        if (offset + size > this.flashSize) return this.error(c.cmd, ROM_ERROR.FLASH_READ_LENGTH);
        let hex = this.md5(offset, size);
        if (this.corruptMd5) hex = (hex[0] === '0' ? '1' : '0') + hex.slice(1);
        return this.reply(c.cmd, 0, Buffer.from(hex, 'latin1'));
      }
      default:
        return this.error(c.cmd, ROM_ERROR.INVALID_MESSAGE);
    }
  }
}
