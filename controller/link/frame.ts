// Protocol v1 line codec (firmware/PROTOCOL.md §1): `<json>*<CRC-16/CCITT-FALSE hex>`.
// Anything that is not a valid frame is console output; decoding never throws.

export const PROTO_VERSION = 1;
export const NODE_MAX_LINE = 1024;   // what a node accepts from us
export const HOST_MAX_LINE = 4096;   // what we accept from a node

const CRC_TABLE = (() => {
  const t = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i << 8;
    for (let k = 0; k < 8; k++) c = c & 0x8000 ? ((c << 1) ^ 0x1021) & 0xffff : (c << 1) & 0xffff;
    t[i] = c;
  }
  return t;
})();

export function crc16(data: Uint8Array | string): number {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  let crc = 0xffff;
  for (let i = 0; i < bytes.length; i++) crc = ((crc << 8) & 0xffff) ^ CRC_TABLE[((crc >> 8) ^ bytes[i]!) & 0xff]!;
  return crc;
}

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type JsonObject = { [k: string]: Json };

/** Encodes one frame line (without the trailing newline). */
export function encodeFrame(obj: JsonObject): string {
  const json = JSON.stringify(obj);
  return `${json}*${crc16(json).toString(16).toUpperCase().padStart(4, '0')}`;
}

export type Decoded =
  | { kind: 'frame'; msg: JsonObject }
  | { kind: 'console'; text: string }
  | { kind: 'corrupt'; text: string; reason: string };

const CRC_SUFFIX = /\*([0-9A-F]{4})$/;

/** Classifies one received line. Never throws, whatever the bytes. */
export function decodeLine(raw: string): Decoded {
  const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
  if (line.length > HOST_MAX_LINE) return { kind: 'corrupt', text: line.slice(0, 200), reason: 'oversized line' };
  if (!line.startsWith('{')) return { kind: 'console', text: line };
  const m = CRC_SUFFIX.exec(line);
  if (!m) return { kind: 'corrupt', text: line, reason: 'no CRC suffix' };
  const json = line.slice(0, line.length - 5);
  if (crc16(json) !== parseInt(m[1]!, 16)) return { kind: 'corrupt', text: line, reason: 'CRC mismatch' };
  let msg: unknown;
  try {
    msg = JSON.parse(json);
  } catch {
    return { kind: 'corrupt', text: line, reason: 'bad JSON' };
  }
  if (msg === null || typeof msg !== 'object' || Array.isArray(msg)) {
    return { kind: 'corrupt', text: line, reason: 'frame is not a JSON object' };
  }
  return { kind: 'frame', msg: msg as JsonObject };
}
