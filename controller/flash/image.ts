// The virtual firmware image ("qsimg"): what `qslab flash` writes to a virtual node's flash file at the app
// offset, standing in for an ESP-IDF app image. Layout (little-endian, 64-byte header, then the payload):
//
//   0   8  magic "QSVIMG1\0"
//   8  16  build hash, ASCII (the firmware's 16 hex digits; NUL-padded)
//  24   4  payload length (bytes)
//  28   4  reserved, 0
//  32  32  SHA-256 of the payload
//  64   n  payload: the POSIX node ELF (firmware/build/qslab-node or a variant)
//
// An erased flash (0xFF) or any other content fails the magic; a damaged payload fails the SHA-256.
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, readSync, writeSync } from 'node:fs';

export const IMAGE_MAGIC = Buffer.from('QSVIMG1\0', 'latin1');
export const IMAGE_HEADER = 64;
/** Where the bootloader looks for the application (ESP-IDF's default factory app offset). */
export const APP_OFFSET = 0x10000;
export const VIRTUAL_FLASH_SIZE = 4 * 1024 * 1024;

export interface VirtualImage {
  hash: string;
  /** The whole image (header + payload), as written to flash. */
  bytes: Buffer;
  payloadLength: number;
  sha256: string;
}

/** Builds the container around a payload (the node ELF) with the given build hash. */
export function packVirtualImage(payload: Buffer, hash: string): VirtualImage {
  if (!/^[0-9a-f]{1,16}$/.test(hash)) throw new Error(`image: build hash "${hash}" is not 1-16 hex digits`);
  const h = Buffer.alloc(IMAGE_HEADER);
  IMAGE_MAGIC.copy(h, 0);
  h.write(hash, 8, 16, 'latin1');
  h.writeUInt32LE(payload.length, 24);
  const sha = createHash('sha256').update(payload).digest();
  sha.copy(h, 32);
  return { hash, bytes: Buffer.concat([h, payload]), payloadLength: payload.length, sha256: sha.toString('hex') };
}

/** Reads the build hash from the binary (`qslab-node --version` → "qslab-node <fw> build <hash>"). */
export function binaryBuildHash(binaryPath: string): string {
  const out = execFileSync(binaryPath, ['--version'], { encoding: 'utf8', timeout: 5000 }).trim();
  const m = /^qslab-node \S+ build ([0-9a-f]{1,16})$/m.exec(out);
  if (!m) throw new Error(`image: ${binaryPath} --version said "${out}", expected "qslab-node <fw> build <hash>"`);
  return m[1]!;
}

/** The image of a POSIX node binary, its build hash read from the binary itself. */
export function makeVirtualImage(binaryPath: string): VirtualImage {
  return packVirtualImage(readFileSync(binaryPath), binaryBuildHash(binaryPath));
}

export type ParsedImage = { ok: true; hash: string; payload: Buffer; image: VirtualImage } | { ok: false; reason: string };

/** Parses an image from a buffer that starts at its header (trailing bytes, e.g. erased flash, are ignored). */
export function parseVirtualImage(buf: Buffer, where = 'image'): ParsedImage {
  if (buf.length < IMAGE_HEADER) return { ok: false, reason: `${where}: too short for an image header (${buf.length} bytes)` };
  const magic = buf.subarray(0, 8);
  if (!magic.equals(IMAGE_MAGIC)) {
    const erased = magic.every((b) => b === 0xff);
    return { ok: false, reason: `${where}: ${erased ? 'erased (0xFF), no application' : `invalid header magic ${magic.toString('hex')}`}` };
  }
  const hash = buf.subarray(8, 24).toString('latin1').replace(/\0+$/, '');
  const len = buf.readUInt32LE(24);
  if (IMAGE_HEADER + len > buf.length) return { ok: false, reason: `${where}: payload length ${len} runs past the end (${buf.length - IMAGE_HEADER} bytes available)` };
  const payload = buf.subarray(IMAGE_HEADER, IMAGE_HEADER + len);
  const sha = createHash('sha256').update(payload).digest();
  if (!sha.equals(buf.subarray(32, 64))) return { ok: false, reason: `${where}: SHA-256 mismatch (image damaged)` };
  if (!/^[0-9a-f]{1,16}$/.test(hash)) return { ok: false, reason: `${where}: build hash field "${hash}" is not hex` };
  return { ok: true, hash, payload: Buffer.from(payload), image: { hash, bytes: Buffer.from(buf.subarray(0, IMAGE_HEADER + len)), payloadLength: len, sha256: sha.toString('hex') } };
}

/** Reads an image file (.qsimg). */
export function readVirtualImage(file: string): VirtualImage {
  const p = parseVirtualImage(readFileSync(file), file);
  if (!p.ok) throw new Error(p.reason);
  return p.image;
}

/** Reads the application image at APP_OFFSET of a flash file. */
export function readFlashApp(flashFile: string): ParsedImage {
  const where = `${flashFile} @0x${APP_OFFSET.toString(16)}`;
  if (!existsSync(flashFile)) return { ok: false, reason: `${where}: flash file missing` };
  const fd = openSync(flashFile, 'r');
  try {
    const head = Buffer.alloc(IMAGE_HEADER);
    const n = readSync(fd, head, 0, IMAGE_HEADER, APP_OFFSET);
    const first = parseVirtualImage(head.subarray(0, n), where);
    if (!first.ok && !/runs past the end/.test(first.reason)) return first;
    const len = head.readUInt32LE(24);
    if (len > VIRTUAL_FLASH_SIZE) return { ok: false, reason: `${where}: payload length ${len} is implausible` };
    const all = Buffer.alloc(IMAGE_HEADER + len);
    const m = readSync(fd, all, 0, all.length, APP_OFFSET);
    return parseVirtualImage(all.subarray(0, m), where);
  } finally {
    closeSync(fd);
  }
}

/** Creates a flash file: erased (0xFF) with the image at APP_OFFSET (a board as it leaves the factory). */
export function createFlashFile(flashFile: string, image: VirtualImage, size = VIRTUAL_FLASH_SIZE): void {
  if (APP_OFFSET + image.bytes.length > size) throw new Error(`image of ${image.bytes.length} bytes does not fit in ${size} bytes of flash at 0x${APP_OFFSET.toString(16)}`);
  const fd = openSync(flashFile, 'w');
  try {
    const erased = Buffer.alloc(64 * 1024, 0xff);
    for (let o = 0; o < size; o += erased.length) writeSync(fd, erased, 0, Math.min(erased.length, size - o), o);
    writeSync(fd, image.bytes, 0, image.bytes.length, APP_OFFSET);
  } finally {
    closeSync(fd);
  }
}
