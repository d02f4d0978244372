// QSHS/1 record layer (firmware/HANDSHAKE.md §5–6), one object per direction.
//
//   Record body = epoch(2) | seq(8) | ciphertext | tag(16)
//   nonce = iv_epoch XOR (0x00000000 | seq as 8 bytes),  AAD = epoch(2) | seq(8)
//   epoch must equal floor(seq / K) (0 when K = 0); replay window of 64 behind the highest accepted seq.
//
// Receive checks, in order: length (decode_error) → epoch == floor(seq/K) (bad_epoch) → replay window (replay)
// → epoch not already retired (bad_epoch) → tag (bad_record_mac). The window and the current epoch only move
// after the tag has checked, so a forged record can neither advance the window nor retire keys.
// Epoch fields are 16 bits: a record whose floor(seq/K) exceeds 65535 cannot be sent (internal_error) and is
// rejected on receipt (bad_epoch).
//
// Suite `none` (§12, the plaintext baseline) uses PlaintextRecordSender / PlaintextRecordReceiver: the same header,
// sequence numbers, epoch rule and replay window, the plaintext in the clear and no tag:
//   Record body = epoch(2) | seq(8) | plaintext
// Key refresh is a no-op there (the epoch field still follows floor(seq / K); no secret exists to ratchet).

import { createCipheriv, createDecipheriv, type CipherGCM, type DecipherGCM } from 'node:crypto';
import { epochKeys, nextSecret, wipe, IV_LEN, type EpochKeys } from './keyschedule.js';
import type { AeadName } from './wire.js';

export const RECORD_HEADER_LEN = 10;
export const TAG_LEN = 16;
export const RECORD_OVERHEAD = RECORD_HEADER_LEN + TAG_LEN;
/** §12: bytes a plaintext record body adds to its payload (the header; no tag). */
export const PLAINTEXT_RECORD_OVERHEAD = RECORD_HEADER_LEN;
export const REPLAY_WINDOW = 64;
const MAX_EPOCH = 0xffff;
const U64_MAX = (1n << 64n) - 1n;

export type RecordErrorCode = 'replay' | 'bad_record_mac' | 'bad_epoch' | 'decode_error' | 'internal_error';

/** Why a record was rejected; `code` is also the alert name the receiver answers with. */
export class RecordError extends Error {
  constructor(readonly code: RecordErrorCode, message: string) {
    super(message);
    this.name = 'RecordError';
  }
}

/** floor(seq / K), 0 when K = 0. */
export function epochOf(seq: bigint, refresh: number): bigint {
  return refresh === 0 ? 0n : seq / BigInt(refresh);
}

function checkRefresh(refresh: number): void {
  if (!Number.isInteger(refresh) || refresh < 0 || refresh > 0xffffffff) throw new RangeError('refresh must be a uint32');
}

// CipherGCM/DecipherGCM and the ChaCha20-Poly1305 variants have the same surface (setAAD, getAuthTag, setAuthTag).
function aeadCipher(aead: AeadName, key: Buffer, nonce: Buffer): CipherGCM {
  return aead === 'aes-256-gcm'
    ? createCipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_LEN })
    : (createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG_LEN }) as unknown as CipherGCM);
}
function aeadDecipher(aead: AeadName, key: Buffer, nonce: Buffer): DecipherGCM {
  return aead === 'aes-256-gcm'
    ? createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_LEN })
    : (createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG_LEN }) as unknown as DecipherGCM);
}

/** nonce = iv XOR (0^4 | seq), seq taken from the record header bytes 2..10 (big-endian). */
function makeNonce(out: Buffer, iv: Buffer, header: Buffer): void {
  for (let i = 0; i < 4; i++) out[i] = iv[i]!;
  for (let i = 0; i < 8; i++) out[4 + i] = iv[4 + i]! ^ header[2 + i]!;
}

/**
 * Sliding replay window: highest accepted seq `h` and a 64-bit bitmap (bit i = seq h−i seen).
 * A seq is a replay when seq ≤ h − 64 or its bit is set.
 */
export class ReplayWindow {
  private h = -1n;
  private bits = 0n;
  private static readonly MASK = (1n << BigInt(REPLAY_WINDOW)) - 1n;

  get highest(): bigint {
    return this.h;
  }

  /** True when `seq` would be accepted. */
  check(seq: bigint): boolean {
    if (this.h < 0n || seq > this.h) return true;
    const d = this.h - seq;
    if (d >= BigInt(REPLAY_WINDOW)) return false;
    return ((this.bits >> d) & 1n) === 0n;
  }

  /** Mark `seq` as received (call only after check() and the tag both passed). */
  accept(seq: bigint): void {
    if (this.h < 0n) {
      this.h = seq;
      this.bits = 1n;
    } else if (seq > this.h) {
      const shift = seq - this.h;
      this.bits = shift >= BigInt(REPLAY_WINDOW) ? 1n : ((this.bits << shift) | 1n) & ReplayWindow.MASK;
      this.h = seq;
    } else {
      this.bits |= 1n << (this.h - seq);
    }
  }
}

/** What the server and client need of a sending half (AEAD or plaintext). */
export interface RecordSealer {
  readonly nextSeq: bigint;
  /** Returns the record body (not framed). */
  seal(plaintext: Uint8Array): Buffer;
  destroy(): void;
}
/** What the server and client need of a receiving half (AEAD or plaintext). */
export interface RecordOpener {
  readonly highestSeq: bigint;
  open(body: Buffer): OpenedRecord;
  destroy(): void;
}

/** Key state shared by both halves: the current epoch's secret, key and iv, wiped on ratchet and destroy. */
abstract class EpochState {
  protected epoch = 0;
  protected secret: Buffer;
  protected keys: EpochKeys;
  protected readonly nonce = Buffer.alloc(IV_LEN);
  protected destroyed = false;

  /**
   * Takes ownership of `secret0` (it is wiped when epoch 0 passes or on destroy()). `qkd` (QKD suites,
   * HANDSHAKE.md §11.4): the fresh QKD keys for epochs 1..n (index e−1 → epoch e), mixed into the ratchet; a
   * record of a later epoch than n is `bad_epoch`. The array is shared (not copied); its owner wipes it.
   */
  constructor(readonly aead: AeadName, secret0: Buffer, readonly refresh: number, protected readonly qkd?: readonly Buffer[]) {
    checkRefresh(refresh);
    this.secret = secret0;
    this.keys = epochKeys(secret0);
  }

  /** secret_{e+1} from secret_e (`e` = the epoch of `secret`). */
  protected next(secret: Buffer, e: number): Buffer {
    if (!this.qkd) return nextSecret(secret);
    const k = this.qkd[e];
    if (!k) throw new RecordError('bad_epoch', `no QKD key for epoch ${e + 1} (the handshake provided ${this.qkd.length})`);
    return nextSecret(secret, k);
  }

  /** Highest epoch this direction may reach (QKD suites: the number of fresh QKD keys). */
  protected get maxEpoch(): number {
    return this.qkd ? Math.min(this.qkd.length, MAX_EPOCH) : MAX_EPOCH;
  }

  get currentEpoch(): number {
    return this.epoch;
  }

  /** Wipe all key material; the object is unusable afterwards. Idempotent. */
  destroy(): void {
    wipe(this.secret, this.keys.key, this.keys.iv, this.nonce);
    this.destroyed = true;
  }
}

/** The epoch the next record goes out in; throws when the sender is destroyed or a counter is exhausted. */
function sendEpoch(destroyed: boolean, seq: bigint, refresh: number): bigint {
  if (destroyed) throw new RecordError('internal_error', 'record sender destroyed');
  if (seq > U64_MAX) throw new RecordError('internal_error', 'sequence number exhausted');
  const e = epochOf(seq, refresh);
  if (e > BigInt(MAX_EPOCH)) throw new RecordError('internal_error', 'epoch counter exhausted (more than 65535 epochs)');
  return e;
}

/** Sending half: seals plaintexts into record bodies with seq 0, 1, 2, … and ratchets every K records. */
export class RecordSender extends EpochState implements RecordSealer {
  private seq = 0n;

  /** Seq of the next record to be sealed. */
  get nextSeq(): bigint {
    return this.seq;
  }

  /** Returns the record body (not framed). */
  seal(plaintext: Uint8Array): Buffer {
    const seq = this.seq;
    const e = sendEpoch(this.destroyed, seq, this.refresh);
    if (e > BigInt(this.maxEpoch)) throw new RecordError('internal_error', `no QKD key for epoch ${e}`);
    while (this.epoch < Number(e)) this.ratchet();

    const body = Buffer.allocUnsafe(RECORD_HEADER_LEN + plaintext.length + TAG_LEN);
    body.writeUInt16BE(this.epoch, 0);
    body.writeBigUInt64BE(seq, 2);
    const header = body.subarray(0, RECORD_HEADER_LEN);
    makeNonce(this.nonce, this.keys.iv, header);
    const c = aeadCipher(this.aead, this.keys.key, this.nonce);
    c.setAAD(header);
    let off = RECORD_HEADER_LEN;
    const ct = c.update(plaintext);
    ct.copy(body, off);
    off += ct.length;
    const fin = c.final();
    fin.copy(body, off);
    off += fin.length;
    c.getAuthTag().copy(body, off);
    this.seq = seq + 1n;
    return body;
  }

  private ratchet(): void {
    const next = this.next(this.secret, this.epoch);
    wipe(this.secret, this.keys.key, this.keys.iv);
    this.secret = next;
    this.keys = epochKeys(next);
    this.epoch++;
  }
}

export interface OpenedRecord {
  epoch: number;
  seq: bigint;
  plaintext: Buffer;
}

/**
 * The checks every receiver makes before anything else, in this order: length, epoch matching the sequence number,
 * replay window, retired epoch. Throws RecordError; returns the header's epoch and sequence number.
 */
function checkRecordHeader(body: Buffer, minLen: number, refresh: number, window: ReplayWindow, current: number): { epoch: number; seq: bigint } {
  if (body.length < minLen) throw new RecordError('decode_error', `record body of ${body.length} bytes is shorter than ${minLen}`);
  const epoch = body.readUInt16BE(0);
  const seq = body.readBigUInt64BE(2);
  const want = epochOf(seq, refresh);
  if (BigInt(epoch) !== want) throw new RecordError('bad_epoch', `record seq ${seq} carries epoch ${epoch}, expected ${want}`);
  if (!window.check(seq)) throw new RecordError('replay', `record seq ${seq} is a replay or outside the window (highest ${window.highest})`);
  if (epoch < current) throw new RecordError('bad_epoch', `record seq ${seq} belongs to retired epoch ${epoch} (current ${current})`);
  return { epoch, seq };
}

/** Receiving half: epoch check, replay window, decryption, ratchet on epoch change. */
export class RecordReceiver extends EpochState implements RecordOpener {
  private readonly window = new ReplayWindow();

  get highestSeq(): bigint {
    return this.window.highest;
  }

  /** Verify and decrypt a record body. Throws RecordError. */
  open(body: Buffer): OpenedRecord {
    if (this.destroyed) throw new RecordError('internal_error', 'record receiver destroyed');
    const { epoch, seq } = checkRecordHeader(body, RECORD_OVERHEAD, this.refresh, this.window, this.epoch);
    if (epoch > this.maxEpoch) {
      throw new RecordError('bad_epoch', `record seq ${seq} carries epoch ${epoch}, beyond the last QKD key (epoch ${this.maxEpoch})`);
    }

    // Keys for a later epoch are derived tentatively and only committed once the tag has checked.
    let secret = this.secret;
    let keys = this.keys;
    if (epoch > this.epoch) {
      for (let e = this.epoch; e < epoch; e++) {
        const next = this.next(secret, e);
        if (secret !== this.secret) wipe(secret);
        secret = next;
      }
      keys = epochKeys(secret);
    }

    const header = body.subarray(0, RECORD_HEADER_LEN);
    const ct = body.subarray(RECORD_HEADER_LEN, body.length - TAG_LEN);
    const tag = body.subarray(body.length - TAG_LEN);
    makeNonce(this.nonce, keys.iv, header);
    let plaintext: Buffer;
    try {
      const d = aeadDecipher(this.aead, keys.key, this.nonce);
      d.setAuthTag(tag);
      d.setAAD(header);
      const p = d.update(ct);
      const f = d.final();
      plaintext = f.length ? Buffer.concat([p, f]) : p;
    } catch {
      if (secret !== this.secret) wipe(secret, keys.key, keys.iv);
      throw new RecordError('bad_record_mac', `record seq ${seq} failed authentication`);
    }

    if (secret !== this.secret) {
      wipe(this.secret, this.keys.key, this.keys.iv);
      this.secret = secret;
      this.keys = keys;
      this.epoch = epoch;
    }
    this.window.accept(seq);
    return { epoch, seq, plaintext };
  }
}

// ---------------------------------------------------------------------------------------------------------
// §12 plaintext records (suite `none`)

/** Sending half of suite `none`: epoch(2) | seq(8) | plaintext, seq 0, 1, 2, …; no keys, refresh is a no-op. */
export class PlaintextRecordSender implements RecordSealer {
  private seq = 0n;
  private destroyed = false;

  constructor(readonly refresh: number) {
    checkRefresh(refresh);
  }

  get nextSeq(): bigint {
    return this.seq;
  }

  seal(plaintext: Uint8Array): Buffer {
    const seq = this.seq;
    const e = sendEpoch(this.destroyed, seq, this.refresh);
    const body = Buffer.allocUnsafe(RECORD_HEADER_LEN + plaintext.length);
    body.writeUInt16BE(Number(e), 0);
    body.writeBigUInt64BE(seq, 2);
    body.set(plaintext, RECORD_HEADER_LEN);
    this.seq = seq + 1n;
    return body;
  }

  destroy(): void {
    this.destroyed = true;
  }
}

/**
 * Receiving half of suite `none`: the AEAD receiver's checks in the same order (length → epoch → replay →
 * retired epoch) minus the tag. The plaintext is returned as it arrived; its integrity is the caller's business
 * (the client compares the echo with what it sent, §12).
 */
export class PlaintextRecordReceiver implements RecordOpener {
  private readonly window = new ReplayWindow();
  private epoch = 0;
  private destroyed = false;

  constructor(readonly refresh: number) {
    checkRefresh(refresh);
  }

  get highestSeq(): bigint {
    return this.window.highest;
  }

  get currentEpoch(): number {
    return this.epoch;
  }

  open(body: Buffer): OpenedRecord {
    if (this.destroyed) throw new RecordError('internal_error', 'record receiver destroyed');
    const { epoch, seq } = checkRecordHeader(body, PLAINTEXT_RECORD_OVERHEAD, this.refresh, this.window, this.epoch);
    this.epoch = epoch; // refresh is a no-op: only the counter moves
    this.window.accept(seq);
    return { epoch, seq, plaintext: Buffer.from(body.subarray(RECORD_HEADER_LEN)) };
  }

  destroy(): void {
    this.destroyed = true;
  }
}
