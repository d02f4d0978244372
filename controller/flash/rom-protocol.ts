// The Espressif ROM bootloader's serial protocol (the one esptool speaks with --no-stub), packets over SLIP.
// Command (host -> chip): u8 direction 0x00, u8 command, u16 LE payload size, u32 LE checksum, payload.
//   The checksum is only checked for the *_DATA commands: XOR of the data bytes, seeded with 0xEF.
// Response (chip -> host): u8 direction 0x01, u8 command (echo), u16 LE body size, u32 LE value, body.
//   The body ends with the status bytes: failed (0 = ok) and error code; the ESP32 ROM sends 4 status bytes
//   (two of them padding), the ESP8266 ROM, the newer chips' ROMs and the esptool stub send 2. RomClient learns which
//   from the first SYNC answer, whose body is nothing but status.
// Everything multi-byte is little-endian. This module builds and parses packets and runs a client over any duplex
// byte stream (a serialport stream in the controller, anything with write() and 'data' in tests).
import { createHash } from 'node:crypto';
import { SlipDecoder, slipEncode } from './slip.js';

export const ROM_CMD = {
  FLASH_BEGIN: 0x02,
  FLASH_DATA: 0x03,
  FLASH_END: 0x04,
  MEM_BEGIN: 0x05,
  MEM_END: 0x06,
  MEM_DATA: 0x07,
  SYNC: 0x08,
  WRITE_REG: 0x09,
  READ_REG: 0x0a,
  SPI_SET_PARAMS: 0x0b,
  SPI_ATTACH: 0x0d,
  CHANGE_BAUDRATE: 0x0f,
  FLASH_DEFL_BEGIN: 0x10,
  FLASH_DEFL_DATA: 0x11,
  FLASH_DEFL_END: 0x12,
  SPI_FLASH_MD5: 0x13,
} as const;
export type RomCommandName = keyof typeof ROM_CMD;

const CMD_NAMES = new Map<number, string>(Object.entries(ROM_CMD).map(([k, v]) => [v, k]));
export function commandName(cmd: number): string {
  return CMD_NAMES.get(cmd) ?? `0x${cmd.toString(16).padStart(2, '0')}`;
}

/** Error codes the ROM loader puts in the second status byte. */
export const ROM_ERROR = {
  INVALID_MESSAGE: 0x05,
  FAILED_TO_ACT: 0x06,
  INVALID_CRC: 0x07,
  FLASH_WRITE: 0x08,
  FLASH_READ: 0x09,
  FLASH_READ_LENGTH: 0x0a,
  DEFLATE: 0x0b,
} as const;

const ERROR_TEXT: Record<number, string> = {
  0x05: 'received message is invalid (parameters or length field)',
  0x06: 'failed to act on received message',
  0x07: 'invalid CRC (checksum) in message',
  0x08: 'flash write error',
  0x09: 'flash read error',
  0x0a: 'flash read length error',
  0x0b: 'deflate error',
};
export function romErrorText(code: number): string {
  return ERROR_TEXT[code] ?? `unknown error 0x${code.toString(16).padStart(2, '0')}`;
}

/** Value of the register at CHIP_DETECT_MAGIC_REG for each chip (read with READ_REG after SYNC). */
export const CHIP_DETECT_MAGIC_REG = 0x40001000;
export const CHIP_MAGIC: Record<string, readonly number[]> = {
  ESP8266: [0xfff0c101],
  ESP32: [0x00f01d83],
  'ESP32-S2': [0x000007c6],
  'ESP32-S3': [0x00000009],
  'ESP32-C3': [0x6921506f, 0x1b31506f],
};
export function chipFromMagic(magic: number): string | undefined {
  for (const [name, values] of Object.entries(CHIP_MAGIC)) if (values.includes(magic >>> 0)) return name;
  return undefined;
}

export const SYNC_PAYLOAD: Buffer = Buffer.concat([Buffer.from([0x07, 0x07, 0x12, 0x20]), Buffer.alloc(32, 0x55)]);
export const CHECKSUM_SEED = 0xef;
/** Block size of FLASH_DATA with the ROM loader (the stub takes 16 KiB). */
export const ROM_FLASH_BLOCK = 0x400;
export const FLASH_SECTOR = 0x1000;
export const HEADER_LEN = 8;

export function romChecksum(data: Uint8Array, seed = CHECKSUM_SEED): number {
  let c = seed;
  for (const b of data) c ^= b;
  return c;
}

/** A command packet before SLIP framing. */
export function buildCommand(cmd: number, payload: Uint8Array = Buffer.alloc(0), checksum = 0): Buffer {
  const p = Buffer.alloc(HEADER_LEN + payload.length);
  p[0] = 0x00;
  p[1] = cmd;
  p.writeUInt16LE(payload.length, 2);
  p.writeUInt32LE(checksum >>> 0, 4);
  Buffer.from(payload.buffer, payload.byteOffset, payload.length).copy(p, HEADER_LEN);
  return p;
}

export function encodeCommand(cmd: number, payload?: Uint8Array, checksum = 0): Buffer {
  return slipEncode(buildCommand(cmd, payload, checksum));
}

export interface RomCommandPacket {
  cmd: number;
  checksum: number;
  payload: Buffer;
}

/** Parses a command packet (what the chip receives); a string says what is wrong with it. */
export function parseCommand(pkt: Buffer): RomCommandPacket | string {
  if (pkt.length < HEADER_LEN) return `command packet of ${pkt.length} bytes is shorter than its header`;
  if (pkt[0] !== 0x00) return `direction byte 0x${pkt[0]!.toString(16)} is not a command (0x00)`;
  const size = pkt.readUInt16LE(2);
  if (size !== pkt.length - HEADER_LEN) return `size field says ${size}, packet carries ${pkt.length - HEADER_LEN}`;
  return { cmd: pkt[1]!, checksum: pkt.readUInt32LE(4), payload: pkt.subarray(HEADER_LEN) };
}

/** A response packet before SLIP framing (what the chip sends). */
export function buildResponse(cmd: number, value: number, data: Uint8Array, status: { failed: boolean; error: number }, statusLen: 2 | 4): Buffer {
  const p = Buffer.alloc(HEADER_LEN + data.length + statusLen);
  p[0] = 0x01;
  p[1] = cmd;
  p.writeUInt16LE(data.length + statusLen, 2);
  p.writeUInt32LE(value >>> 0, 4);
  Buffer.from(data.buffer, data.byteOffset, data.length).copy(p, HEADER_LEN);
  p[HEADER_LEN + data.length] = status.failed ? 1 : 0;
  p[HEADER_LEN + data.length + 1] = status.failed ? status.error : 0;
  return p;
}

export interface RomResponse {
  cmd: number;
  value: number;
  /** Body without the status bytes. */
  data: Buffer;
  failed: boolean;
  error: number;
  statusLen: 2 | 4;
}

/** Parses a response; statusLen undefined: 4 when the body is long enough, else 2. */
export function parseResponse(pkt: Buffer, statusLen?: 2 | 4): RomResponse | string {
  if (pkt.length < HEADER_LEN) return `response of ${pkt.length} bytes is shorter than its header`;
  if (pkt[0] !== 0x01) return `direction byte 0x${pkt[0]!.toString(16)} is not a response (0x01)`;
  const size = pkt.readUInt16LE(2);
  if (size !== pkt.length - HEADER_LEN) return `size field says ${size}, packet carries ${pkt.length - HEADER_LEN}`;
  const sl: 2 | 4 = statusLen ?? (size >= 4 ? 4 : 2);
  if (size < sl) return `body of ${size} bytes cannot hold ${sl} status bytes`;
  const body = pkt.subarray(HEADER_LEN);
  const failed = body[size - sl]! !== 0;
  return { cmd: pkt[1]!, value: pkt.readUInt32LE(4), data: body.subarray(0, size - sl), failed, error: body[size - sl + 1]!, statusLen: sl };
}

function u32s(...v: number[]): Buffer {
  const b = Buffer.alloc(4 * v.length);
  v.forEach((x, i) => b.writeUInt32LE(x >>> 0, 4 * i));
  return b;
}

export const payloads = {
  readReg: (addr: number): Buffer => u32s(addr),
  writeReg: (addr: number, value: number, mask = 0xffffffff, delayUs = 0): Buffer => u32s(addr, value, mask, delayUs),
  /** ESP32 ROM: u32 SPI pin config (0 = default pins), u32 legacy flag (0). */
  spiAttach: (hspiArg = 0): Buffer => u32s(hspiArg, 0),
  spiSetParams: (totalSize: number, blockSize = 64 * 1024, sectorSize = FLASH_SECTOR, pageSize = 256, statusMask = 0xffff): Buffer =>
    u32s(0, totalSize, blockSize, sectorSize, pageSize, statusMask),
  flashBegin: (eraseSize: number, blocks: number, blockSize: number, offset: number): Buffer => u32s(eraseSize, blocks, blockSize, offset),
  /** Returns the payload and the checksum that goes into the header. */
  flashData: (seq: number, data: Uint8Array): { payload: Buffer; checksum: number } => ({
    payload: Buffer.concat([u32s(data.length, seq, 0, 0), data]),
    checksum: romChecksum(data),
  }),
  /** 0: reboot into the application; 1: stay in the loader. */
  flashEnd: (reboot: boolean): Buffer => u32s(reboot ? 0 : 1),
  md5: (offset: number, size: number): Buffer => u32s(offset, size, 0, 0),
  /** The ROM wants 0 as the old rate (the stub wants the current rate). */
  changeBaudrate: (baud: number, oldBaud = 0): Buffer => u32s(baud, oldBaud),
};

export type RomErrorCode = 'E_TIMEOUT' | 'E_STATUS' | 'E_CHIP' | 'E_MD5' | 'E_CLOSED' | 'E_PROTO';

export class RomError extends Error {
  constructor(readonly code: RomErrorCode, message: string, readonly romError?: number) {
    super(message);
    this.name = 'RomError';
  }
}

/** What the client needs of a port: a serialport stream fits, and so does any EventEmitter with write(). */
export interface RomStream {
  write(buf: Buffer): unknown;
  on(event: string, cb: (...args: any[]) => void): unknown;
  removeListener?(event: string, cb: (...args: any[]) => void): unknown;
}

export interface RomClientOptions {
  /** Name used in errors, e.g. /dev/ttyUSB0. */
  port?: string;
  /** Default per-command timeout (ms). */
  timeoutMs?: number;
  /** Status bytes per response; default: learned from the first SYNC answer. */
  statusLen?: 2 | 4;
  /** Bytes outside frames (boot log, noise), e.g. to show them to the user. */
  onGarbage?: (bytes: Buffer) => void;
  /** Called by changeBaudrate() after the ROM acknowledged, to switch the host side (port.update). */
  setBaud?: (baud: number) => Promise<void> | void;
}

export interface CommandOptions {
  checksum?: number;
  timeoutMs?: number;
  /** Text for errors, e.g. "block 3/64". */
  what?: string;
}

export interface FlashProgress {
  block: number;
  blocks: number;
  bytes: number;
  total: number;
}

export interface WriteFlashOptions {
  blockSize?: number;
  retries?: number;
  verify?: boolean;
  onProgress?: (p: FlashProgress) => void;
}

interface Waiter {
  cmd: number;
  resolve: (r: RomResponse) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

const MB = 1024 * 1024;
const ERASE_MS_PER_MB = 30_000;
const MD5_MS_PER_MB = 8_000;

export interface RomClientStats {
  frames: number;
  badFrames: number;
  stray: number;
  garbageBytes: number;
  badEscapes: number;
  retries: number;
}

/** One command at a time, as the ROM loader handles them. */
export class RomClient {
  readonly stats: RomClientStats = { frames: 0, badFrames: 0, stray: 0, garbageBytes: 0, badEscapes: 0, retries: 0 };
  statusLen?: 2 | 4;
  chip?: string;
  private readonly decoder: SlipDecoder;
  private waiter?: Waiter;
  private closedBy?: Error;
  private readonly onData = (b: Buffer): void => this.decoder.push(b);
  private readonly onClose = (): void => this.fail(new RomError('E_CLOSED', `${this.port} vanished (the port closed)`));
  private readonly onError = (e: Error): void => this.fail(new RomError('E_CLOSED', `${this.port}: ${e.message}`));
  /** SYNC answers seen outside a sync(); drained extras land here. */
  private syncAnswers = 0;

  constructor(private readonly stream: RomStream, private readonly opts: RomClientOptions = {}) {
    this.statusLen = opts.statusLen;
    this.decoder = new SlipDecoder({
      onFrame: (f) => this.onFrame(f),
      onProblem: () => {
        this.stats.badEscapes++;
      },
      onGarbage: (g) => {
        this.stats.garbageBytes += g.length;
        opts.onGarbage?.(g);
      },
    });
    stream.on('data', this.onData);
    stream.on('close', this.onClose);
    stream.on('error', this.onError);
  }

  get port(): string {
    return this.opts.port ?? 'the serial port';
  }

  /** Stops listening; a pending command fails. */
  detach(): void {
    this.stream.removeListener?.('data', this.onData);
    this.stream.removeListener?.('close', this.onClose);
    this.stream.removeListener?.('error', this.onError);
    this.fail(new RomError('E_CLOSED', `client on ${this.port} detached`));
  }

  private fail(err: Error): void {
    this.closedBy ??= err;
    const w = this.waiter;
    if (!w) return;
    this.waiter = undefined;
    clearTimeout(w.timer);
    w.reject(err);
  }

  private onFrame(f: Buffer): void {
    this.stats.frames++;
    const r = parseResponse(f, this.statusLen);
    if (typeof r === 'string') {
      this.stats.badFrames++;
      return;
    }
    const w = this.waiter;
    if (!w || w.cmd !== r.cmd) {
      if (r.cmd === ROM_CMD.SYNC) this.syncAnswers++;
      else this.stats.stray++;
      return;
    }
    this.waiter = undefined;
    clearTimeout(w.timer);
    w.resolve(r);
  }

  /** Sends one command and waits for its answer; a failed status rejects with E_STATUS. */
  async command(cmd: number, payload: Uint8Array = Buffer.alloc(0), o: CommandOptions = {}): Promise<RomResponse> {
    const r = await this.exchange(cmd, payload, o);
    if (r.failed) {
      const what = o.what ? ` (${o.what})` : '';
      throw new RomError('E_STATUS', `ROM loader on ${this.port} rejected ${commandName(cmd)}${what}: error 0x${r.error.toString(16).padStart(2, '0')}, ${romErrorText(r.error)}`, r.error);
    }
    return r;
  }

  private exchange(cmd: number, payload: Uint8Array, o: CommandOptions): Promise<RomResponse> {
    if (this.closedBy) return Promise.reject(this.closedBy);
    if (this.waiter) return Promise.reject(new RomError('E_PROTO', `${commandName(cmd)} sent while ${commandName(this.waiter.cmd)} is pending`));
    const timeoutMs = o.timeoutMs ?? this.opts.timeoutMs ?? 3000;
    return new Promise<RomResponse>((resolve, reject) => {
      const what = o.what ? ` (${o.what})` : '';
      this.waiter = {
        cmd, resolve, reject,
        timer: setTimeout(() => {
          this.waiter = undefined;
          reject(new RomError('E_TIMEOUT', `no answer from the ROM bootloader on ${this.port} to ${commandName(cmd)}${what} within ${timeoutMs} ms`));
        }, timeoutMs),
      };
      try {
        this.stream.write(encodeCommand(cmd, payload, o.checksum ?? 0));
      } catch (e) {
        this.fail(new RomError('E_CLOSED', `write to ${this.port}: ${(e as Error).message}`));
      }
    });
  }

  /**
   * SYNC until the loader answers (it needs a few to lock onto the baud rate), then swallows the extra answers
   * the ROM sends for one SYNC (8 in all on an ESP32), so they are not taken for the next command's.
   */
  async sync(o: { attempts?: number; timeoutMs?: number; drainMs?: number } = {}): Promise<void> {
    const attempts = o.attempts ?? 7;
    const timeoutMs = o.timeoutMs ?? 100;
    let last: Error | undefined;
    for (let i = 0; i < attempts; i++) {
      try {
        const r = await this.exchange(ROM_CMD.SYNC, SYNC_PAYLOAD, { timeoutMs });
        if (!this.opts.statusLen) {
          // The SYNC answer's body is only status: its size is the status length.
          const size = r.data.length + r.statusLen;
          this.statusLen = size === 2 ? 2 : 4;
        }
        if (r.failed || r.data.length + r.statusLen !== this.statusLen) {
          last = new RomError('E_PROTO', `odd SYNC answer from ${this.port}`);
          continue;
        }
        await this.drainSync(o.drainMs ?? 50);
        return;
      } catch (e) {
        if ((e as RomError).code !== 'E_TIMEOUT') throw e;
        last = e as Error;
      }
    }
    throw new RomError('E_TIMEOUT', `no answer from the ROM bootloader on ${this.port}: is the board in download mode? (${attempts} SYNC attempts, ${timeoutMs} ms each${last ? `; last: ${last.message}` : ''})`);
  }

  /** Waits until no SYNC answer came for quietMs. */
  private async drainSync(quietMs: number): Promise<void> {
    let seen = -1;
    while (seen !== this.syncAnswers) {
      seen = this.syncAnswers;
      await new Promise((r) => setTimeout(r, quietMs));
      if (this.closedBy) throw this.closedBy;
    }
  }

  async readReg(addr: number): Promise<number> {
    return (await this.command(ROM_CMD.READ_REG, payloads.readReg(addr), { what: `0x${addr.toString(16)}` })).value >>> 0;
  }

  async writeReg(addr: number, value: number, mask = 0xffffffff, delayUs = 0): Promise<void> {
    await this.command(ROM_CMD.WRITE_REG, payloads.writeReg(addr, value, mask, delayUs));
  }

  /** Reads the chip magic; expect: throws E_CHIP unless it is that chip. */
  async detectChip(expect?: string): Promise<{ chip: string; magic: number }> {
    const magic = await this.readReg(CHIP_DETECT_MAGIC_REG);
    const chip = chipFromMagic(magic);
    const hex = `0x${magic.toString(16).padStart(8, '0')}`;
    if (!chip) throw new RomError('E_CHIP', `unknown chip on ${this.port}: magic ${hex} at 0x${CHIP_DETECT_MAGIC_REG.toString(16)}`);
    if (expect && chip !== expect) throw new RomError('E_CHIP', `wrong chip on ${this.port}: expected ${expect}, found ${chip} (magic ${hex})`);
    this.chip = chip;
    return { chip, magic };
  }

  async spiAttach(): Promise<void> {
    await this.command(ROM_CMD.SPI_ATTACH, payloads.spiAttach());
  }

  async spiSetParams(totalSize = 4 * MB): Promise<void> {
    await this.command(ROM_CMD.SPI_SET_PARAMS, payloads.spiSetParams(totalSize));
  }

  /** Erases the sectors covering [offset, offset+size) and opens a write of ceil(size/blockSize) blocks. */
  async flashBegin(size: number, offset: number, blockSize = ROM_FLASH_BLOCK): Promise<{ blocks: number; blockSize: number }> {
    const blocks = Math.ceil(size / blockSize);
    const timeoutMs = Math.max(this.opts.timeoutMs ?? 3000, Math.ceil((ERASE_MS_PER_MB * size) / MB));
    await this.command(ROM_CMD.FLASH_BEGIN, payloads.flashBegin(size, blocks, blockSize, offset), { timeoutMs, what: `${size} bytes at 0x${offset.toString(16)}` });
    return { blocks, blockSize };
  }

  /** One FLASH_DATA block (padded with 0xFF to blockSize); retried on a rejected checksum or a lost answer. */
  async flashBlock(data: Uint8Array, seq: number, o: { blockSize?: number; retries?: number; blocks?: number } = {}): Promise<void> {
    const blockSize = o.blockSize ?? ROM_FLASH_BLOCK;
    let block = Buffer.from(data.buffer, data.byteOffset, data.length);
    if (block.length < blockSize) block = Buffer.concat([block, Buffer.alloc(blockSize - block.length, 0xff)]);
    const { payload, checksum } = payloads.flashData(seq, block);
    const retries = o.retries ?? 3;
    const what = `block ${seq + 1}${o.blocks ? `/${o.blocks}` : ''}`;
    for (let attempt = 0; ; attempt++) {
      try {
        await this.command(ROM_CMD.FLASH_DATA, payload, { checksum, what });
        return;
      } catch (e) {
        const err = e as RomError;
        const retryable = err.code === 'E_TIMEOUT' || (err.code === 'E_STATUS' && err.romError === ROM_ERROR.INVALID_CRC);
        if (!retryable || attempt >= retries) {
          if (err.code === 'E_CLOSED') {
            const gone = `${this.port} vanished`;
            const msg = err.message.startsWith(gone) ? `${gone} during FLASH_DATA ${what}${err.message.slice(gone.length)}` : `${gone} during FLASH_DATA ${what}: ${err.message}`;
            throw new RomError('E_CLOSED', msg);
          }
          throw attempt > 0 ? new RomError(err.code, `${err.message} (after ${attempt + 1} attempts)`, err.romError) : err;
        }
        this.stats.retries++;
      }
    }
  }

  async flashEnd(reboot: boolean): Promise<void> {
    await this.command(ROM_CMD.FLASH_END, payloads.flashEnd(reboot));
  }

  /** MD5 of a flash region, lower-case hex (the ROM answers 32 hex characters, the stub 16 raw bytes). */
  async md5(offset: number, size: number): Promise<string> {
    const timeoutMs = Math.max(this.opts.timeoutMs ?? 3000, Math.ceil((MD5_MS_PER_MB * size) / MB));
    const r = await this.command(ROM_CMD.SPI_FLASH_MD5, payloads.md5(offset, size), { timeoutMs });
    if (r.data.length === 32) return r.data.toString('latin1').toLowerCase();
    if (r.data.length === 16) return r.data.toString('hex');
    throw new RomError('E_PROTO', `MD5 answer from ${this.port} has ${r.data.length} bytes (expected 32 hex characters or 16 bytes)`);
  }

  /** Throws E_MD5 unless the flash at offset holds image. */
  async verify(offset: number, image: Uint8Array): Promise<string> {
    const want = createHash('md5').update(image).digest('hex');
    const got = await this.md5(offset, image.length);
    if (got !== want) throw new RomError('E_MD5', `MD5 mismatch: flash has ${got}, image has ${want} (${image.length} bytes at 0x${offset.toString(16)} on ${this.port})`);
    return got;
  }

  /** Asks the ROM to switch rates; after its answer (at the old rate) the host side follows via opts.setBaud. */
  async changeBaudrate(baud: number): Promise<void> {
    await this.command(ROM_CMD.CHANGE_BAUDRATE, payloads.changeBaudrate(baud, 0));
    await this.opts.setBaud?.(baud);
    await new Promise((r) => setTimeout(r, 50)); // the chip switches after sending its answer
    this.decoder.reset();
  }

  /** FLASH_BEGIN, every block, then (by default) the MD5 check. Does not send FLASH_END. */
  async writeFlash(image: Uint8Array, offset: number, o: WriteFlashOptions = {}): Promise<void> {
    const { blocks, blockSize } = await this.flashBegin(image.length, offset, o.blockSize);
    for (let seq = 0; seq < blocks; seq++) {
      const chunk = image.subarray(seq * blockSize, Math.min(image.length, (seq + 1) * blockSize));
      await this.flashBlock(chunk, seq, { blockSize, retries: o.retries, blocks });
      o.onProgress?.({ block: seq + 1, blocks, bytes: Math.min(image.length, (seq + 1) * blockSize), total: image.length });
    }
    if (o.verify ?? true) await this.verify(offset, image);
  }
}
