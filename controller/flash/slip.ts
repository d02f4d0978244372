// SLIP framing (RFC 1055 as used by the Espressif ROM bootloader): every packet is sent as 0xC0 <body> 0xC0, where
// a 0xC0 inside the body becomes 0xDB 0xDC and a 0xDB becomes 0xDB 0xDD. The decoder is streaming: chunks may split
// a frame (or an escape pair) anywhere; bytes outside a frame (a boot log, line noise) are counted as garbage and
// handed to an optional callback; a bad escape drops the frame it is in and is reported, never thrown.

export const SLIP_END = 0xc0;
export const SLIP_ESC = 0xdb;
export const SLIP_ESC_END = 0xdc;
export const SLIP_ESC_ESC = 0xdd;

/** One framed packet: leading and trailing 0xC0, escapes applied. */
export function slipEncode(body: Uint8Array): Buffer {
  let extra = 0;
  for (const b of body) if (b === SLIP_END || b === SLIP_ESC) extra++;
  const out = Buffer.allocUnsafe(body.length + extra + 2);
  let o = 0;
  out[o++] = SLIP_END;
  for (const b of body) {
    if (b === SLIP_END) {
      out[o++] = SLIP_ESC;
      out[o++] = SLIP_ESC_END;
    } else if (b === SLIP_ESC) {
      out[o++] = SLIP_ESC;
      out[o++] = SLIP_ESC_ESC;
    } else {
      out[o++] = b;
    }
  }
  out[o++] = SLIP_END;
  return out;
}

export type SlipProblemKind = 'bad-escape' | 'oversize';

export interface SlipProblem {
  kind: SlipProblemKind;
  /** For bad-escape: the byte that followed 0xDB. */
  byte?: number;
  message: string;
}

export interface SlipDecoderOptions {
  onFrame: (body: Buffer) => void;
  onProblem?: (p: SlipProblem) => void;
  /** Bytes seen outside any frame (e.g. the ROM's boot text), in arrival order. */
  onGarbage?: (bytes: Buffer) => void;
  /** Largest decoded body accepted; longer frames are dropped and reported. Default 64 KiB. */
  maxFrame?: number;
}

export interface SlipStats {
  frames: number;
  garbageBytes: number;
  badEscapes: number;
  oversize: number;
}

type State = 'idle' | 'frame' | 'discard';

/**
 * Streaming decoder. A 0xC0 opens a frame when outside one and closes it when inside; an empty frame (0xC0 0xC0)
 * is no frame, so the closing 0xC0 of one packet and the opening 0xC0 of the next never yield an empty body.
 */
export class SlipDecoder {
  readonly stats: SlipStats = { frames: 0, garbageBytes: 0, badEscapes: 0, oversize: 0 };
  private state: State = 'idle';
  private escaped = false;
  private buf: Buffer;
  private len = 0;
  private readonly max: number;

  constructor(private readonly opts: SlipDecoderOptions) {
    this.max = opts.maxFrame ?? 64 * 1024;
    this.buf = Buffer.allocUnsafe(Math.min(this.max, 4096));
  }

  /** Drops a partial frame (e.g. after the port was reopened). */
  reset(): void {
    this.state = 'idle';
    this.escaped = false;
    this.len = 0;
  }

  push(chunk: Uint8Array): void {
    let garbageStart = -1;
    const flushGarbage = (end: number): void => {
      if (garbageStart < 0) return;
      const n = end - garbageStart;
      this.stats.garbageBytes += n;
      this.opts.onGarbage?.(Buffer.from(chunk.subarray(garbageStart, end)));
      garbageStart = -1;
    };
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]!;
      if (this.state === 'idle') {
        if (b === SLIP_END) {
          flushGarbage(i);
          this.open();
        } else if (garbageStart < 0) {
          garbageStart = i;
        }
        continue;
      }
      if (this.state === 'discard') {
        if (b === SLIP_END) this.open(); // the broken frame's end doubles as a possible start
        continue;
      }
      // state === 'frame'
      if (this.escaped) {
        this.escaped = false;
        if (b === SLIP_ESC_END) this.append(SLIP_END);
        else if (b === SLIP_ESC_ESC) this.append(SLIP_ESC);
        else {
          this.stats.badEscapes++;
          this.opts.onProblem?.({
            kind: 'bad-escape',
            byte: b,
            message: `bad SLIP escape 0xdb 0x${b.toString(16).padStart(2, '0')} at byte ${this.len} of a frame; frame dropped`,
          });
          if (b === SLIP_END) this.open();
          else this.state = 'discard';
        }
        continue;
      }
      if (b === SLIP_END) {
        if (this.len > 0) {
          const body = Buffer.from(this.buf.subarray(0, this.len));
          this.stats.frames++;
          this.state = 'idle';
          this.len = 0;
          this.opts.onFrame(body);
        }
        // else: an empty frame, i.e. two 0xC0 in a row: keep waiting for the body
      } else if (b === SLIP_ESC) {
        this.escaped = true;
      } else {
        this.append(b);
      }
    }
    flushGarbage(chunk.length);
  }

  private open(): void {
    this.state = 'frame';
    this.escaped = false;
    this.len = 0;
  }

  private append(b: number): void {
    if (this.len >= this.max) {
      this.stats.oversize++;
      this.opts.onProblem?.({ kind: 'oversize', message: `SLIP frame longer than ${this.max} bytes; frame dropped` });
      this.state = 'discard';
      this.len = 0;
      return;
    }
    if (this.len === this.buf.length) {
      const bigger = Buffer.allocUnsafe(Math.min(this.max, this.buf.length * 2));
      this.buf.copy(bigger, 0, 0, this.len);
      this.buf = bigger;
    }
    this.buf[this.len++] = b;
  }
}
