// QKD-augmented QSHS/1 suites (firmware/HANDSHAKE.md §11): key_IDs, the key-source interface the server takes
// keys from (master side, e.g. an ETSI GS QKD 014 KME behind an adapter), the CatKDF combiner (ETSI TS 103 744
// §8.2) and the serial provisioning of a node's key store (PROTOCOL.md `qkd`). No dependency on controller/kme:
// the lead adapts a KmeClient to QkdKeySource (encKeys → take, decKeys → keys to provision).

import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { hkdfExpand, hkdfExtract, HASH_LEN, observeSecret, wipe } from './keyschedule.js';
import { QKD_ID_LEN, QKD_MAX_UPD } from './wire.js';

/** Bytes of every QKD key (256 bits: ETSI GS QKD 014 `size` = 256). */
export const QKD_KEY_LEN = 32;
/** Keys a node's store holds (PROTOCOL.md `qkd`). */
export const QKD_STORE_CAP = 256;

export interface QkdKey {
  /** key_ID: a UUID in its canonical 36-character form (lower case), as ETSI GS QKD 014 returns it. */
  keyId: string;
  /** 32 bytes. The owner wipes it after use. */
  key: Buffer;
}

/** Where the server (master SAE) gets fresh QKD keys. Each key is handed out once. */
export interface QkdKeySource {
  take(n: number): Promise<QkdKey[]>;
}

// ---------------------------------------------------------------------------------------------------------
// key_IDs

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isKeyId(s: string): boolean {
  return UUID_RE.test(s);
}

/** Canonical UUID text → 16 bytes (§11.2). */
export function keyIdToBytes(id: string): Buffer {
  if (!isKeyId(id)) throw new Error(`key_ID '${id}' is not a UUID`);
  return Buffer.from(id.replace(/-/g, ''), 'hex');
}

/** 16 bytes → canonical lower-case UUID text. */
export function keyIdFromBytes(b: Uint8Array): string {
  if (b.length !== QKD_ID_LEN) throw new Error('a binary key_ID is 16 bytes');
  const h = Buffer.from(b).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** qkd_upd (§11.1): fresh QKD keys a connection of M records with refresh K needs, ⌊(M−1)/K⌋ (0 if M or K is 0). */
export function qkdUpdFor(records: number, refresh: number): number {
  return records > 0 && refresh > 0 ? Math.floor((records - 1) / refresh) : 0;
}
export { QKD_MAX_UPD };

// ---------------------------------------------------------------------------------------------------------
// CatKDF (ETSI TS 103 744 V1.1.1 §8.2, HKDF variant, SHA-256) and its QSHS/1 instantiation (§11.3)

const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n, 0);
  return b;
};

/** TS 103 744 §7.2.3 concatenate-and-hash formatting: SHA-256(len(info)|info|len(MA)|MA|len(MB)|MB), lengths u32 BE. */
export function catKdfContext(info: Uint8Array, ma: Uint8Array, mb: Uint8Array): Buffer {
  return createHash('sha256')
    .update(u32(info.length)).update(info)
    .update(u32(ma.length)).update(ma)
    .update(u32(mb.length)).update(mb)
    .digest();
}

export interface CatKdfInput {
  /** Pre-shared key (here: the QKD key); may be empty. */
  psk: Uint8Array;
  /** Shared secrets, concatenated after psk in this order. */
  secrets: Uint8Array[];
  info: Uint8Array;
  ma: Uint8Array;
  mb: Uint8Array;
  /** HKDF salt. */
  label: Uint8Array;
  length: number;
}

/**
 * CatKDF with HKDF-SHA-256: key = HKDF(salt = label, IKM = psk | k1 | k2 …, info = context(info, MA, MB), L).
 * Matches the ETSI reference implementation (hkex_concat_hkdf). The IKM copy is wiped.
 */
export function catKdf(i: CatKdfInput): Buffer {
  const ikm = Buffer.concat([i.psk, ...i.secrets]);
  const prk = hkdfExtract(i.label, ikm);
  wipe(ikm);
  const out = hkdfExpand(prk, catKdfContext(i.info, i.ma, i.mb), i.length);
  wipe(prk);
  return out;
}

/** §11.3 CatKDF `info`. */
export const QKD_INFO = Buffer.from('QSHS1 qkd master', 'latin1');

/**
 * master (§11.3) = CatKDF(psk = qkd_key_0, k1 | k2 = Z, info = "QSHS1 qkd master", MA = TH, MB = key_ID_0,
 * label = client_random | server_random, L = 32). Z and the QKD key stay owned by the caller.
 */
export function qkdMaster(a: {
  qkdKey: Uint8Array; z: Uint8Array; th: Uint8Array; keyId0: Uint8Array; clientRandom: Uint8Array; serverRandom: Uint8Array;
}): Buffer {
  const master = catKdf({
    psk: a.qkdKey, secrets: [a.z], info: QKD_INFO, ma: a.th, mb: a.keyId0,
    label: Buffer.concat([a.clientRandom, a.serverRandom]), length: HASH_LEN,
  });
  observeSecret('master(qkd)', master);
  return master;
}

// ---------------------------------------------------------------------------------------------------------
// In-memory key pair source (tests): two views of one pool, like the master and slave KMEs of a QKD link

/** One pool of shared keys seen from both ends: `master` hands keys out in order (server side), `slave` looks them up by key_ID. */
export class QkdKeyPairSource {
  private readonly masterQueue: QkdKey[] = [];
  private readonly slaveKeys = new Map<string, Buffer>();
  /** key_IDs handed out by the master view, in order. */
  readonly issued: string[] = [];

  /** The master (server) view. */
  readonly master: QkdKeySource = {
    take: async (n: number) => {
      if (!Number.isInteger(n) || n < 1) throw new Error(`take(${n}): n must be a positive integer`);
      if (this.masterQueue.length < n) throw new Error(`QKD pool exhausted: ${n} keys wanted, ${this.masterQueue.length} left`);
      const out = this.masterQueue.splice(0, n);
      this.issued.push(...out.map((k) => k.keyId));
      return out;
    },
  };

  /** The slave (node) view: keys by key_ID (copies; each key can be fetched once, like decKeys). */
  readonly slave = {
    get: (ids: string[]): QkdKey[] => ids.map((id) => {
      const k = this.slaveKeys.get(id);
      if (!k) throw new Error(`unknown key_ID ${id}`);
      this.slaveKeys.delete(id);
      return { keyId: id, key: k };
    }),
    /** All keys not fetched yet, in generation order (copies). */
    all: (): QkdKey[] => [...this.slaveKeys].map(([keyId, key]) => ({ keyId, key: Buffer.from(key) })),
  };

  /** Adds n fresh random keys to both views; returns copies of the new keys (what a node is provisioned with). */
  generate(n: number): QkdKey[] {
    const out: QkdKey[] = [];
    for (let i = 0; i < n; i++) {
      const keyId = randomUUID();
      const key = randomBytes(QKD_KEY_LEN);
      this.masterQueue.push({ keyId, key: Buffer.from(key) });
      this.slaveKeys.set(keyId, Buffer.from(key));
      out.push({ keyId, key });
    }
    return out;
  }

  /** Keys left on the master side. */
  get available(): number {
    return this.masterQueue.length;
  }

  /** Wipe both views. */
  destroy(): void {
    for (const k of this.masterQueue) wipe(k.key);
    for (const k of this.slaveKeys.values()) wipe(k);
    this.masterQueue.length = 0;
    this.slaveKeys.clear();
  }
}

/** A client-side store (TS client option `qkdKeys`) from a list of keys. */
export function keyMap(keys: QkdKey[]): Map<string, Buffer> {
  return new Map(keys.map((k) => [k.keyId.toLowerCase(), Buffer.from(k.key)]));
}

// ---------------------------------------------------------------------------------------------------------
// Serial provisioning (PROTOCOL.md `qkd`): trusted-node delivery of a batch of keys to the node's store

/** What provisionNode needs from a NodeLink (structural, so tests can pass a fake). */
export interface QkdLink {
  request(cmd: string, args?: Record<string, string | number | boolean>, o?: { timeoutMs?: number }): Promise<Record<string, unknown>>;
}

/** Request lines are at most 1024 bytes with the newline (PROTOCOL.md §1): JSON + "*XXXX" + "\n". */
const LOAD_BUDGET = 1024 - 6;

/** One `qkd load` keys argument per batch: "<uuid>=<hex>;<uuid>=<hex>…", each ≤ LOAD_BUDGET bytes of JSON. */
export function loadBatches(keys: QkdKey[]): string[] {
  const batches: string[] = [];
  let cur: string[] = [];
  let len = 0;
  const head = '{"id":4294967295,"cmd":"qkd","op":"load","keys":""}'.length;
  for (const k of keys) {
    if (!isKeyId(k.keyId)) throw new Error(`key_ID '${k.keyId}' is not a UUID`);
    if (k.key.length !== QKD_KEY_LEN) throw new Error(`QKD key ${k.keyId} is ${k.key.length} bytes, not ${QKD_KEY_LEN}`);
    const item = `${k.keyId.toLowerCase()}=${k.key.toString('hex')}`;
    const add = item.length + (cur.length ? 1 : 0);
    if (cur.length && head + len + add > LOAD_BUDGET) {
      batches.push(cur.join(';'));
      cur = [];
      len = 0;
    }
    len += item.length + (cur.length ? 1 : 0);
    cur.push(item);
  }
  if (cur.length) batches.push(cur.join(';'));
  return batches;
}

/**
 * Loads `keys` into a node's QKD key store over the serial control plane, in as few `qkd load` requests as the
 * 1024-byte line limit allows (9 keys per request). Returns the keys loaded, the request bytes written
 * (frame lines with their newline) and the wall time. The key bytes exist only in the request lines.
 */
export async function provisionNode(link: QkdLink, keys: QkdKey[], opts: { timeoutMs?: number } = {}): Promise<{ keys: number; bytes: number; ms: number; requests: number }> {
  const t0 = process.hrtime.bigint();
  let bytes = 0;
  let loaded = 0;
  const batches = loadBatches(keys);
  for (const b of batches) {
    // id and CRC are added by the link; count the line as it goes out (id width varies: estimate with a 4-digit id)
    bytes += JSON.stringify({ id: 1000, cmd: 'qkd', op: 'load', keys: b }).length + 6;
    const r = await link.request('qkd', { op: 'load', keys: b }, { timeoutMs: opts.timeoutMs ?? 5000 });
    loaded += Number(r.loaded ?? 0);
  }
  return { keys: loaded, bytes, ms: Number(process.hrtime.bigint() - t0) / 1e6, requests: batches.length };
}
